"""The integration tier: the operator as a separate process against a real API server.

By default the session brings up the project's own control plane (tests/controlplane/). With
FASTAPI_OPERATOR_TEST_KUBECONFIG set, it uses that cluster instead, and kubectl from PATH; on real
nodes, FASTAPI_OPERATOR_TEST_IMAGE(_NEXT) must name runnable FastAPI images. The kind tier runs the
suite that way (tests/e2e/test_whole_suite_on_real_pods.py). Without Go, and not on CI, the tier
is skipped with the reason printed; on CI it never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.harness import Cluster, OperatorProcess, existing_cluster, measurements, own_control_plane

# Short, so a full resync falls inside the steady-state window of test j.
TEST_RESYNC_SECONDS = 20

pytestmark = pytest.mark.integration


def _own_control_plane(tmp: Path) -> Iterator[Cluster]:
    if shutil.which("go") is None:
        message = ("integration tests SKIPPED: Go is not installed, so the test control plane cannot be built; "
                   "install Go 1.26 or set FASTAPI_OPERATOR_TEST_KUBECONFIG to a cluster's kubeconfig")
        if os.environ.get("CI"):
            pytest.fail(message.replace("SKIPPED", "cannot run on CI"))
        print(f"\n*** {message} ***", file=sys.stderr)
        pytest.skip(message)
    with own_control_plane(tmp / "cluster") as cluster:
        yield cluster


INGRESS_CLASSES = Path(__file__).with_name("ingress-classes.yaml")
# Apps that name no class get this one, as they got the old default: the kind cluster's default
# class is Traefik's, and these tests are about the API, not about which controller serves.
# Prometheus's namespace (spec.metrics) is set, so apps that ask for metrics are admitted.
SESSION_SETTINGS = {"ingress_class": "nginx", "monitoring_namespace": "monitoring"}


def _with_ingress_classes(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "fastapi-operator-tests",
                    "-f", str(INGRESS_CLASSES))
    return cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    existing = os.environ.get("FASTAPI_OPERATOR_TEST_KUBECONFIG")
    if existing:
        yield _with_ingress_classes(existing_cluster(existing))
        return
    for own in _own_control_plane(tmp_path_factory.mktemp("controlplane")):
        yield _with_ingress_classes(own)


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log", TEST_RESYNC_SECONDS,
                              settings=SESSION_SETTINGS)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator_paused(operator: OperatorProcess) -> Iterator[None]:
    """The session's cluster-wide operator stopped, for tests that run their own."""
    operator.stop()
    yield
    operator.start()


@pytest.fixture
def namespace(cluster: Cluster, operator: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[str]:
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())[:25].strip("-")
    name = f"t-{readable}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- Measurements the closing notes report, printed at the end of the run ---

MEASUREMENTS = measurements("measurements")


@pytest.fixture
def report() -> Callable[[str, str], None]:
    return MEASUREMENTS.record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """On failure, attach the operator's and the control plane's logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    process = funcargs.get("operator")
    if process is None:
        return
    report.sections.append(("operator log (tail)", process.log_tail(40)))
    logs = process.cluster.logs
    if logs and logs.is_dir():
        for path in sorted(logs.glob("*.log")):
            errors = [line for line in path.read_text(errors="replace").splitlines(True)
                      if line.startswith("E") and "extension-apiserver-authentication" not in line]
            report.sections.append((f"{path.name}: last errors (whole log in {logs})", "".join(errors[-10:])))
