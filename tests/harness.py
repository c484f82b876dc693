"""What the integration tier and the benchmark share: a handle on a cluster (the project's own
control plane, or any kubeconfig), the operator as a child process, and polling helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from kubernetes import client, config

from fastapi_operator.kinds import CHILDREN, CLUSTER_ISSUER, FASTAPIAPP, GATEWAY, HOST_CLAIM, INGRESS_CLASS
from fastapi_operator.kube import Kind, Kube

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "tests" / "controlplane" / "cluster.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A cluster the tests, the kind rig (tests/e2e/rig.py, which adds the engine and kind) and the
    benchmark talk to: kubectl, the Python client, and where its logs go."""
    kubeconfig: Path
    operator_kubeconfig: Path
    kubectl_path: str
    logs: Path | None
    # Set for the project's own control plane, whose processes a test may stop and start.
    control_plane_state: Path | None = None

    # Made at first use: the kind rig makes its Cluster before the cluster (and its kubeconfig) exists.
    @functools.cached_property
    def api(self) -> client.ApiClient:
        return config.new_client_from_config(str(self.kubeconfig))

    @functools.cached_property
    def kube(self) -> Kube:
        return Kube(self.api)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run([self.kubectl_path, "--kubeconfig", str(self.kubeconfig), *args],
                                input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def wait_available(self, namespace: str, deployment: str, timeout: int = 300) -> None:
        self.kubectl("wait", "-n", namespace, "--for=condition=Available", f"deployment/{deployment}",
                     f"--timeout={timeout}s", timeout=timeout + 30)

    def control_plane(self, command: str) -> None:
        """tests/controlplane/cluster.py <command> (stop-apiserver, start-apiserver) on this cluster."""
        assert self.control_plane_state is not None, "only the project's own control plane can be stopped"
        subprocess.run([sys.executable, str(CLUSTER_SCRIPT), command], check=True,
                       env={**os.environ, "FASTAPI_OPERATOR_CLUSTER_DIR": str(self.control_plane_state)})

    def apply(self, *manifests: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.kube.get(kind, namespace, name)

    def app(self, namespace: str, name: str) -> dict[str, Any]:
        body = self.kube.get(FASTAPIAPP, namespace, name)
        assert body is not None, f"FastAPIApp {namespace}/{name} is gone"
        return body

    def metrics(self) -> str:
        return _raw_get(self.api, "/metrics")


MUTATING_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
# What the operator writes. Child status subresources are excluded: their controllers
# (Deployment, HPA) own them; the FastAPIApp's status is the operator's and is counted.
# Certificates are left out: cert-manager's ingress-shim writes them too.
OPERATOR_RESOURCES = ({child.kind.plural for child in CHILDREN} - {"certificates"}) | {
    kind.plural for kind in (FASTAPIAPP, CLUSTER_ISSUER, HOST_CLAIM, INGRESS_CLASS, GATEWAY)}
SAMPLE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$')


def request_counts(metrics_text: str, verbs: set[str] = MUTATING_VERBS) -> Counter:
    """apiserver_request_total for `verbs` (default: the mutating ones) on what the operator writes,
    by (verb, resource, subresource)."""
    counts: Counter = Counter()
    for line in metrics_text.splitlines():
        match = SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        resource, subresource = labels.get("resource"), labels.get("subresource", "")
        if labels.get("verb") not in verbs or resource not in OPERATOR_RESOURCES:
            continue
        if subresource and resource != "fastapiapps":
            continue
        counts[(labels["verb"], resource, subresource)] += float(match["value"])
    return counts


def _raw_get(api: client.ApiClient, path: str) -> str:
    request = api.param_serialize(method="GET", resource_path=path, header_params={"Accept": "text/plain"},
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request)
    return response.read().decode()


def existing_cluster(kubeconfig: str) -> Cluster:
    """Any cluster (the kind cluster of `make kind-up`), with kubectl from PATH and the CRDs applied."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "a kubeconfig was given but kubectl is not on PATH"
    cluster = Cluster(Path(kubeconfig), Path(kubeconfig), kubectl, None)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    return cluster


@contextlib.contextmanager
def own_control_plane(state: Path) -> Iterator[Cluster]:
    """The project's control plane (tests/controlplane/cluster.py), up for the duration."""
    env = {**os.environ, "FASTAPI_OPERATOR_CLUSTER_DIR": str(state)}
    up = subprocess.run([sys.executable, str(CLUSTER_SCRIPT), "up"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert up.returncode == 0, "the test control plane did not come up (see stderr above)"
        bin_dir = Path((state / "bin").read_text())
        yield Cluster(state / "kubeconfig", state / "operator.kubeconfig", str(bin_dir / "kubectl"), state / "logs",
                      control_plane_state=state)
    finally:
        subprocess.run([sys.executable, str(CLUSTER_SCRIPT), "down"], env=env)


OPERATOR_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def sample(text: str, metric: str, **labels: str) -> float:
    """The sum of `metric`'s samples whose labels include `labels` (0 when there is none), from
    Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{metric}(?:\{{(.*)\}})? (\S+)$", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match[2])
    return total


class OperatorProcess:
    """`fastapi-operator run` as a child process, so tests can kill and restart it."""

    def __init__(self, cluster: Cluster, log_path: Path, resync_seconds: float = 300,
                 settings: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.resync_seconds = resync_seconds
        # Extra operator settings, as FASTAPI_OPERATOR_<NAME> variables.
        self.settings = settings or {}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self.liveness_port: int | None = None
        self.metrics_port: int | None = None

    def start(self) -> None:
        port = self.liveness_port = free_port()
        self.metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.cluster.operator_kubeconfig),
               "FASTAPI_OPERATOR_RESYNC_SECONDS": str(self.resync_seconds),
               "FASTAPI_OPERATOR_LIVENESS_PORT": str(port), "FASTAPI_OPERATOR_LOG_FORMAT": "json",
               "FASTAPI_OPERATOR_METRICS_PORT": str(self.metrics_port),
               **{f"FASTAPI_OPERATOR_{name.upper()}": value for name, value in self.settings.items()}}
        started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "fastapi_operator.cli", "run"], env=env,
                                        stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        deadline = started + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the operator exited:\n{self.log_tail()}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    self.startup_seconds = time.monotonic() - started
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the operator's liveness endpoint never opened:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        """The operator's own /metrics (Prometheus text)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def writes(self, text: str | None = None) -> float:
        """What the operator sent that could change something (its rest_client metrics), Events
        included; from `text` when the caller has just read the metrics."""
        text = self.metrics() if text is None else text
        return sum(sample(text, "rest_client_requests_total", method=method) for method in OPERATOR_WRITE_METHODS)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])


class Measurements(dict[str, str]):
    """Numbers a tier reports (the closing notes quote them), printed at the end of the run under
    `title`. Each title has one instance per process (`measurements(title)`), so tests/conftest.py
    can carry a parallel run's numbers from its workers to the report."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def record(self, name: str, value: str) -> None:
        self[name] = value


MEASUREMENT_SECTIONS: dict[str, Measurements] = {}


def measurements(title: str) -> Measurements:
    return MEASUREMENT_SECTIONS.setdefault(title, Measurements(title))


def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.1, message: str = "") -> Any:
    """Poll until `check` returns something truthy without raising; return it. A KeyError is a
    field not there yet (a new app's first status waits moments for its Deployment), not a failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (AssertionError, KeyError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s: {message} (last: {last!r})")


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_), {})
