"""A real Kubernetes control plane on 127.0.0.1, with no container runtime.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as plain processes; KWOK
plays the kubelet for two fake nodes, so pods are scheduled and become Running and Ready.

    python tests/controlplane/cluster.py up      # prints the kubeconfig path
    python tests/controlplane/cluster.py down
    python tests/controlplane/cluster.py stop-apiserver / start-apiserver   # an API server outage

State (certificates, etcd data, logs, pids) lives in $FASTAPI_OPERATOR_CLUSTER_DIR, by
default .cluster/ in the repository. Binaries come from build.sh's cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OPERATOR_CRD = REPO / "crds"
# Two fake nodes of 110 pods each; the benchmark asks for more (FASTAPI_OPERATOR_KWOK_NODES) at 1,000 apps.
NODE_COUNT = int(os.environ.get("FASTAPI_OPERATOR_KWOK_NODES", "2"))
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
START_TIMEOUT_SECONDS = 90


def state_dir() -> Path:
    return Path(os.environ.get("FASTAPI_OPERATOR_CLUSTER_DIR", REPO / ".cluster"))


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def build() -> Path:
    """The cached control plane build (bin/ and manifests/); builds it on first use."""
    result = subprocess.run(["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, the service-account key pair, and client
    certificates: `admin` for tests and kubectl, `fastapi-operator` for the operator, so the
    API server can tell their requests apart."""
    pki.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=fastapi-operator-test-ca",
            "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"))
    openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    sans = "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
    certificates = {
        "apiserver": ("/CN=kube-apiserver", sans),
        "admin": ("/O=system:masters/CN=admin", None),
        "operator": ("/O=system:masters/CN=fastapi-operator", None),
    }
    for name, (subject, extension) in certificates.items():
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"))
        extfile = pki / f"{name}.ext"
        extfile.write_text((extension or "extendedKeyUsage=clientAuth") + "\n")
        openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"), "-CAkey",
                str(pki / "ca.key"), "-CAcreateserial", "-days", "3650", "-extfile", str(extfile),
                "-out", str(pki / f"{name}.crt"))


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fastapi-operator-test", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"), "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "fastapi-operator-test", "context": {"cluster": "fastapi-operator-test", "user": user}}],
        "current-context": "fastapi-operator-test",
    }
    path.write_text(json.dumps(config, indent=2))


def start(name: str, argv: list[str], state: Path) -> None:
    (state / "argv").mkdir(exist_ok=True)
    (state / "argv" / f"{name}.json").write_text(json.dumps(argv))
    logfile = open(state / "logs" / f"{name}.log", "ab")
    process = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    (state / "pids" / f"{name}.pid").write_text(str(process.pid))


def running(pid: int) -> bool:
    """Some thread of the process still runs. Not `kill -0`: this sandbox's init reaps no orphan, so
    a process that ended stays a zombie; and a thread-group leader shows as a zombie while its other
    threads, which still hold its sockets, are exiting."""
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state.split()[1] not in ("Z", "X"):
            return True
    return False


def exited_components() -> list[str]:
    return [pidfile.stem for pidfile in (state_dir() / "pids").iterdir() if not running(int(pidfile.read_text()))]


def wait_until(what: str, check, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited := exited_components():
            logs = state_dir() / "logs"
            tails = "\n".join(f"--- {name}:\n" + "".join((logs / f"{name}.log").read_text().splitlines(True)[-15:])
                              for name in exited)
            raise SystemExit(f"cluster: {', '.join(exited)} exited while waiting for {what}:\n{tails}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"cluster: {what} did not come up within {timeout:.0f}s; see {state_dir() / 'logs'}")


def apiserver_ready(server: str, pki: Path) -> bool:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=2) as response:
        return response.status == 200


def kubectl(kubeconfig: Path, bin_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
                            input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def fake_node(index: int) -> dict:
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24"},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def up() -> Path:
    state = state_dir()
    kubeconfig = state / "kubeconfig"
    if (state / "pids").is_dir() and any((state / "pids").iterdir()):
        log(f"already up; kubeconfig {kubeconfig}")
        return kubeconfig
    started = time.monotonic()
    out = build()
    bin_dir, manifests = out / "bin", out / "manifests"
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("logs", "pids", "etcd"):
        (state / sub).mkdir(parents=True)
    pki = state / "pki"
    make_pki(pki)

    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    start("etcd", [
        str(bin_dir / "etcd"), "--name", "test", "--data-dir", str(state / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"test=http://127.0.0.1:{peer_port}",
        # A throwaway test store: durability buys nothing and fsync costs seconds per test.
        "--unsafe-no-fsync", "--log-level", "warn",
    ], state)
    start("kube-apiserver", [
        str(bin_dir / "kube-apiserver"),
        "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
        "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"),
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-cluster-ip-range", SERVICE_CIDR,
        "--authorization-mode", "RBAC",
        "--allow-privileged=true",
        "--profiling=false",
        # The kubernetes Service's endpoints may not be loopback; nothing here needs them.
        "--endpoint-reconciler-type=none",
    ], state)
    write_kubeconfig(kubeconfig, server, pki, "admin")
    write_kubeconfig(state / "operator.kubeconfig", server, pki, "operator")
    wait_until("kube-apiserver", lambda: apiserver_ready(server, pki))
    log(f"kube-apiserver ready on {server} after {time.monotonic() - started:.1f}s")

    # Before the controller manager starts, so its garbage collector knows FastAPIApps from the
    # first moment instead of after its next discovery pass. The CRDs are large (cert-manager's
    # exceed the client-side apply annotation limit), hence server-side.
    kubectl(kubeconfig, bin_dir, "apply", "--server-side", "--force-conflicts", "-f", str(manifests / "crds"))
    kubectl(kubeconfig, bin_dir, "apply", "--server-side", "--force-conflicts", "-f", str(OPERATOR_CRD))
    kubectl(kubeconfig, bin_dir, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    # Established is not yet served: the first lists answer 429 "storage is (re)initializing".
    wait_until("the CRDs to be served", lambda: kubectl(
        kubeconfig, bin_dir, "get", "fastapiapps,certificates,clusterissuers,middlewares", "-A", "-o", "name") is not None)

    start("kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"), "--kubeconfig", str(kubeconfig),
        "--authentication-kubeconfig", str(kubeconfig), "--authorization-kubeconfig", str(kubeconfig),
        "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--leader-elect=false",
        "--service-account-private-key-file", str(pki / "sa.key"), "--root-ca-file", str(pki / "ca.crt"),
        "--cluster-cidr", POD_CIDR, "--service-cluster-ip-range", SERVICE_CIDR,
        "--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
        # The default client rate limit (20 QPS) makes a burst of apps wait on the controller
        # manager rather than on the operator under test.
        "--kube-api-qps=200", "--kube-api-burst=400",
        # KWOK's nodes never fail, but an API server restart delays their heartbeats: without
        # this, the node controller marks every pod NotReady and KWOK never marks them Ready again.
        "--node-monitor-grace-period=300s",
    ], state)
    start("kube-scheduler", [
        str(bin_dir / "kube-scheduler"), "--kubeconfig", str(kubeconfig),
        "--authentication-kubeconfig", str(kubeconfig), "--authorization-kubeconfig", str(kubeconfig),
        "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--leader-elect=false",
        "--kube-api-qps=200", "--kube-api-burst=400",
    ], state)
    start("kwok", [
        str(bin_dir / "kwok"), "--kubeconfig", str(kubeconfig), "--config", str(manifests / "kwok-stages.yaml"),
        "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr", POD_CIDR, "--node-ip", "127.0.0.1", "--server-address", f"127.0.0.1:{free_port()}",
    ], state)

    kubectl(kubeconfig, bin_dir, "apply", "-f", "-",
            stdin="\n---\n".join(json.dumps(fake_node(i)) for i in range(NODE_COUNT)))
    wait_until("the fake nodes", lambda: kubectl(
        kubeconfig, bin_dir, "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}"
    ).split() == ["True"] * NODE_COUNT)
    wait_until("the default ServiceAccount", lambda: kubectl(
        kubeconfig, bin_dir, "get", "serviceaccount", "default", "-n", "default", "-o", "name"))
    log(f"up in {time.monotonic() - started:.1f}s: {NODE_COUNT} KWOK nodes, cert-manager and Traefik CRDs; "
        f"export KUBECONFIG={kubeconfig}")
    (state / "bin").write_text(str(bin_dir))
    return kubeconfig


def down() -> None:
    state = state_dir()
    pids = state / "pids"
    if not pids.is_dir():
        log("not running")
        return
    # Reverse start order: nodes and controllers first, etcd last.
    for pidfile in sorted(pids.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    deadline = time.monotonic() + 10
    for pidfile in pids.iterdir():
        wait_gone(int(pidfile.read_text()), deadline)
        pidfile.unlink()
    log("down")


def wait_gone(pid: int, deadline: float) -> None:
    """Wait for a process told to stop; SIGKILL its group at the deadline."""
    while time.monotonic() < deadline:
        if not running(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    # Gone, sockets closed, before `down` returns: a killed Go process takes a moment to end its threads.
    killed = time.monotonic() + 10
    while time.monotonic() < killed and running(pid):
        time.sleep(0.05)


def stop_component(name: str) -> None:
    """SIGTERM, as a rolling restart of a real control plane does, and wait until it is gone."""
    pidfile = state_dir() / "pids" / f"{name}.pid"
    pid = int(pidfile.read_text())
    os.killpg(pid, signal.SIGTERM)
    wait_gone(pid, time.monotonic() + 30)
    pidfile.unlink()
    log(f"{name} stopped")


def start_component(name: str) -> None:
    """The same command line as at `up`."""
    state = state_dir()
    start(name, json.loads((state / "argv" / f"{name}.json").read_text()), state)


def stop_apiserver() -> None:
    stop_component("kube-apiserver")


def start_apiserver() -> None:
    """The same command line again; returns once it answers."""
    state = state_dir()
    start_component("kube-apiserver")
    server = json.loads((state / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
    wait_until("kube-apiserver", lambda: apiserver_ready(server, state / "pki"))
    log("kube-apiserver ready again")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "build", "stop-apiserver", "start-apiserver"])
    args = parser.parse_args()
    commands = {"up": lambda: print(up()), "down": down, "build": lambda: print(build()),
                "stop-apiserver": stop_apiserver, "start-apiserver": start_apiserver}
    commands[args.command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
