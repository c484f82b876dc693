"""The kind tier: real pods, Traefik, cert-manager and Pebble, on a cluster built offline by
rig.py. The session brings the cluster up (building whatever is not cached) and deletes it at
the end. Without Go or debootstrap, and not on CI, the tier is skipped with the reason printed;
on CI it never skips. Failures carry the pods' logs, the Events and the operator's log."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e import rig
from tests.harness import measurements

pytestmark = pytest.mark.e2e

MEASUREMENTS = measurements("kind measurements")


@pytest.fixture(scope="session")
def kind_cluster() -> Iterator[rig.KindCluster]:
    missing = [tool for tool in ("go", "debootstrap", "docker", "iptables", "gcc") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        message = (f"kind tier SKIPPED: it needs root and {', '.join(missing) or 'nothing else'} "
                   "(`make setup` installs the Debian packages)")
        if os.environ.get("CI"):
            pytest.fail(message.replace("SKIPPED", "cannot run on CI"))
        print(f"\n*** {message} ***", file=sys.stderr)
        pytest.skip(message)
    cluster = rig.up(reuse=bool(os.environ.get("FASTAPI_OPERATOR_E2E_REUSE")))
    MEASUREMENTS.update({f"kind: {k}": v for k, v in json.loads((cluster.state / "timings.json").read_text()).items()})
    try:
        yield cluster
    finally:
        if not os.environ.get("FASTAPI_OPERATOR_E2E_KEEP"):
            rig.down_in_background()


@pytest.fixture(scope="session")
def pebble_root(kind_cluster, tmp_path_factory) -> Path:
    """Pebble's issuing root, from its management API, through the API server's service proxy."""
    pem = kind_cluster.kubectl("get", "--raw", "/api/v1/namespaces/pebble/services/https:pebble:management/proxy/roots/0",
                               timeout=60).stdout
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(pem)
    return path


@pytest.fixture(scope="session")
def report():
    return MEASUREMENTS.record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """On failure: the operator's log, the test namespace's pods' logs and Events."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    cluster = getattr(item, "funcargs", {}).get("kind_cluster")
    if cluster is None:
        return

    def kubectl(*args: str) -> str:
        result = cluster.kubectl(*args, check=False, timeout=60)
        return result.stdout + result.stderr

    report.sections.append(("operator logs (every replica)", kubectl(
        "logs", "-n", rig.OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=fastapi-operator", "--prefix",
        "--tail=60")))
    namespace = getattr(item, "funcargs", {}).get("app_namespace")
    for ns in filter(None, (namespace, "cert-manager", "traefik", "pebble")):
        report.sections.append((f"events in {ns}", kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp")[-4000:]))
        report.sections.append((f"pod logs in {ns}", kubectl("logs", "-n", ns, "--all-containers", "--prefix",
                                                             "-l", "app.kubernetes.io/name", "--tail=30")[-4000:]
                                if ns == namespace else kubectl("logs", "-n", ns, "--all-containers", "--prefix",
                                                                "-l", "app", "--tail=30")[-4000:]))
