"""What the kind rig builds with: pins, cache keys, Go and Debian builds, and the container engine.

Every build is cached under ~/.cache/fastapi-operator/e2e, keyed by the hash of its inputs (pins,
files, the builder's own source), so a second run on the same machine rebuilds nothing. Nothing
here knows what the cluster runs: the node is rig.py's, each component is its own folder.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONTROLPLANE = REPO / "tests" / "controlplane"
CACHE = Path(os.environ.get("FASTAPI_OPERATOR_CACHE", Path.home() / ".cache" / "fastapi-operator")) / "e2e"
RUN_DIR = Path("/run/fastapi-operator-e2e")
DOCKER_SOCKET = RUN_DIR / "docker.sock"
KUBE_VERSION_MODULE = "k8s.io/kubernetes"


def log(message: str) -> None:
    print(f"e2e: {message}", file=sys.stderr, flush=True)


def read_pins(path: Path = HERE / "versions.env") -> dict[str, str]:
    """KEY=value lines; comments and blank lines ignored."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


def kubernetes_version() -> str:
    for line in (CONTROLPLANE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "require" and parts[1] == KUBE_VERSION_MODULE:
            return parts[2]
        if len(parts) == 2 and parts[0] == KUBE_VERSION_MODULE:
            return parts[1]
    raise RuntimeError(f"{KUBE_VERSION_MODULE} is not pinned in {CONTROLPLANE / 'go.mod'}")


def target_cert_manager_version() -> str:
    """The cert-manager the project is written against (the control plane's CRDs come from it)."""
    return read_pins(CONTROLPLANE / "versions.env")["CERT_MANAGER_VERSION"]


def gateway_api_version() -> str:
    """The Gateway API standard channel, pinned once for the control plane and this cluster."""
    return read_pins(CONTROLPLANE / "versions.env")["GATEWAY_API_VERSION"]


def gateway_api_crds() -> list[Path]:
    """Its CRDs, straight from the Go module (the channel's upgrade policy is left out, as on the
    control plane)."""
    crds = module_dir(f"sigs.k8s.io/gateway-api@{gateway_api_version()}") / "config" / "crd" / "standard"
    return sorted(path for path in crds.glob("gateway.networking.k8s.io_*.yaml") if "vap_" not in path.name)


def controlplane_crd(name: str) -> Path:
    """A CRD the control plane's build (tests/controlplane/build.sh, cached) fetched or generated,
    such as the Prometheus Operator's PodMonitor, which controller-gen makes from its API module."""
    out = run("bash", CONTROLPLANE / "build.sh", quiet=False).strip().splitlines()[-1]
    return Path(out) / "manifests" / "crds" / name


def cache_key(*parts: object) -> str:
    """A stable hash of what a build depends on: pins, file contents, the builder's own code."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for file in files:
                digest.update(str(file.relative_to(REPO) if file.is_relative_to(REPO) else file).encode())
                digest.update(file.read_bytes())
        elif callable(part):
            digest.update(inspect.getsource(part).encode())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_once(name: str, key: str, build: Callable[[Path], None], root: Path = CACHE) -> Path:
    """`build(directory)` once per key; later calls return the finished directory. A build that
    fails or is interrupted leaves no finished directory behind."""
    out = root / f"{name}-{key}"
    if (out / ".complete").exists():
        return out
    partial = root / f"{name}-{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.monotonic()
    log(f"building {name} ({key})")
    build(partial)
    (partial / ".complete").write_text(f"{time.monotonic() - started:.0f}s\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    log(f"built {name} in {time.monotonic() - started:.0f}s")
    return out


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
        stdin: bytes | None = None, quiet: bool = False) -> str:
    result = subprocess.run([str(c) for c in command], env={**os.environ, **(env or {})}, cwd=cwd,
                            input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if quiet else None)
    if result.returncode != 0:
        output = result.stdout.decode(errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(str(c) for c in command)} failed ({result.returncode}):\n{output}")
    return result.stdout.decode(errors="replace")


def go_install(out: Path, packages: Iterable[str], *, cgo: bool = False, tags: str = "", ldflags: str = "",
               cwd: Path | None = None) -> None:
    """`go install pkg@version` (or, with `cwd`, `go build` inside that module)."""
    env = {"CGO_ENABLED": "1" if cgo else "0", "GOBIN": str(out), "GOFLAGS": "-mod=mod"}
    flags = [*(["-tags", tags] if tags else []), *(["-ldflags", ldflags] if ldflags else [])]
    if cwd is None:
        run("go", "install", *flags, *packages, env=env)
    else:
        run("go", "build", *flags, "-o", f"{out}/", *packages, env=env, cwd=cwd)


ROOTFS_UNUSED = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/locale", "usr/share/doc",
                 "usr/share/man", "usr/share/info"]


def debian_rootfs(pins: dict[str, str], name: str, packages: list[str]) -> Path:
    """A Debian root filesystem from debootstrap, as a tar for `docker import`."""
    def build(out: Path) -> None:
        root = out / "root"
        run("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", pins["DEBIAN_SUITE"], root,
            pins["DEBIAN_MIRROR"], quiet=True)
        for unused in ROOTFS_UNUSED:
            shutil.rmtree(root / unused, ignore_errors=True)
            (root / unused).mkdir(parents=True, exist_ok=True)
        # Builds inside images reach the package registries only through the machine's CAs.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
        run("tar", "-C", root, "-cf", out / "rootfs.tar", ".")
        shutil.rmtree(root)
    key = cache_key(pins["DEBIAN_SUITE"], pins["DEBIAN_MIRROR"], sorted(packages), ROOTFS_UNUSED, build)
    return build_once(f"rootfs-{name}", key, build) / "rootfs.tar"


NODE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool",
                 "util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq",
                 "procps"]
# Python for the images built from the project's Dockerfiles (they start FROM python:3.11-slim,
# and bookworm's python3 is 3.11): what the official image has, and no more, because both
# images are loaded into every new cluster.
SLIM_PACKAGES = ["python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"]
# The base of the node's own tools: iptables for kube-proxy, and the NetworkPolicy enforcer's
# Python client. They are inside the node image, built once.
TOOLS_PACKAGES = [*SLIM_PACKAGES, "python3-kubernetes",
                  # debootstrap resolves no virtual packages: python3-cryptography needs this one named.
                  "python3-cffi-backend",
                  "iptables", "nftables", "conntrack", "ipset", "iproute2"]


# --- The container engine ---

@dataclass
class Engine:
    """A Docker daemon of the project's own, on its own socket, with its data in the cache, so
    images built once stay for the next run and nothing touches another Docker on the machine."""

    bin_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{DOCKER_SOCKET}", "PATH": f"{self.bin_dir}:{os.environ['PATH']}"}

    def docker(self, *args: str | Path, stdin: bytes | None = None, quiet: bool = True) -> str:
        return run("docker", *args, env=self.env, stdin=stdin, quiet=quiet)

    def answering(self) -> bool:
        return subprocess.run(["docker", "version"], env={**os.environ, **self.env}, capture_output=True).returncode == 0

    def start(self) -> None:
        if self.answering():
            return
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        # A daemon killed with its session leaves its pid file; dockerd refuses to start while
        # the file names a live process, which after a while may be any process.
        pid_file = RUN_DIR / "dockerd.pid"
        if pid_file.exists():
            comm = Path(f"/proc/{pid_file.read_text().strip()}/comm")
            if not comm.exists() or comm.read_text().strip() != "dockerd":
                pid_file.unlink()
        data = CACHE / "docker"
        data.mkdir(parents=True, exist_ok=True)
        log_file = open(CACHE / "dockerd.log", "ab")
        subprocess.Popen(
            [self.bin_dir / "dockerd", "--data-root", data, "--exec-root", RUN_DIR / "exec",
             "--pidfile", RUN_DIR / "dockerd.pid", "-H", f"unix://{DOCKER_SOCKET}"],
            env={**os.environ, **self.env}, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answering():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer within 60 s; see {CACHE / 'dockerd.log'}")
            time.sleep(0.5)
        log(f"engine up on {DOCKER_SOCKET}")

    def stop(self) -> None:
        pid_file = RUN_DIR / "dockerd.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            subprocess.run(["kill", str(pid)], check=False)
            wait_for_exit(pid, 60)

    def has_image(self, tag: str) -> bool:
        return subprocess.run(["docker", "image", "inspect", tag], env={**os.environ, **self.env},
                              capture_output=True).returncode == 0

    def import_tar(self, tar: Path, tag: str, changes: Iterable[str] = ()) -> None:
        flags = [arg for change in changes for arg in ("--change", change)]
        self.docker("import", *flags, tar, tag)

    def build(self, context: Path, tag: str, **build_args: str) -> None:
        args = [arg for key, value in build_args.items() for arg in ("--build-arg", f"{key}={value}")]
        # The legacy builder: no buildx plugin is needed, and FROM finds local images by name.
        run("docker", "build", "-q", *args, "-t", tag, context, env={**self.env, "DOCKER_BUILDKIT": "0"}, quiet=True)


PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def binary_image(engine: Engine, tag: str, files: dict[str, Path], changes: Iterable[str] = ()) -> None:
    """An image of nothing but static binaries (and the machine's CA bundle), by `docker import`."""
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "image.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add("/etc/ssl/certs/ca-certificates.crt", "etc/ssl/certs/ca-certificates.crt")
            for destination, source in files.items():
                tar.add(source, destination.lstrip("/"))
            for directory in ("tmp", "var/run"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777
                tar.addfile(info)
        engine.import_tar(tar_path, tag, [PATH_ENV, *changes])


def module_dir(module: str, cwd: Path | None = None) -> Path:
    output = run("go", "mod", "download", "-json", module, env={"GOFLAGS": "-mod=mod"}, cwd=cwd)
    return Path(json.loads(output)["Dir"])


# --- Images ---

def debian_python_image(engine: Engine, pins: dict[str, str], name: str, packages: list[str]) -> str:
    """An image of Debian's Python 3.11 and `packages`, tagged by what it is made of. pip inside
    builds trusts the machine's CA bundle and may install beside Debian's packages."""
    rootfs = debian_rootfs(pins, name, packages)
    tag = f"fastapi-operator-e2e/{name}:{cache_key(rootfs.parent.name)}"
    if engine.has_image(tag):
        return tag
    engine.import_tar(rootfs, tag + "-rootfs", [PATH_ENV, "ENV LANG=C.UTF-8"])
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(
            f"FROM {tag}-rootfs\n"
            "RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \\\n"
            " && printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf\n"
            'CMD ["python3"]\n')
        engine.build(context, tag)
    return tag


def slim_image(engine: Engine, pins: dict[str, str]) -> str:
    """`python:3.11-slim`, which both of the project's Dockerfiles start FROM, made locally:
    bookworm's python3 is 3.11."""
    tag = "python:3.11-slim"
    engine.docker("tag", debian_python_image(engine, pins, "slim", SLIM_PACKAGES), tag)
    return tag


def tools_image(engine: Engine, pins: dict[str, str]) -> str:
    """The base of kube-proxy's and the NetworkPolicy enforcer's images."""
    return debian_python_image(engine, pins, "tools", TOOLS_PACKAGES)


def wait_for_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
