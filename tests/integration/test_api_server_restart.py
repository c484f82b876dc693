"""An API server restart in the middle of a burst: the operator's watches and requests fail, it
neither crashes nor makes anything twice, and everything converges once the API server is back.
It stops the project's own control plane, so it runs there only (`-m "not own_control_plane"`
leaves it out on any other cluster, such as the kind tier's run of this suite)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import yaml

from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP, SERVICE
from tests.harness import condition, eventually
from tests.manifests import SMALL_RESOURCES, app_manifest

pytestmark = pytest.mark.own_control_plane
APPS = int(os.environ.get("FASTAPI_OPERATOR_TEST_RESTART_APPS", "200"))
OUTAGE_SECONDS = 5


def test_an_api_server_restart_during_a_burst_of_creates_converges_without_duplicates_or_orphans(
        cluster, namespace, operator, report):
    if cluster.control_plane_state is None:
        pytest.fail("this test stops the API server, which only the project's own control plane allows: "
                    "deselect it with -m 'not own_control_plane'")
    manifests = [app_manifest(f"r-{i:03d}", namespace, replicas=1, resources=SMALL_RESOURCES) for i in range(APPS)]
    cluster.apply(*manifests[: APPS // 2])
    # The second half is applied while the API server goes down: kubectl retries until it is back.
    second_half = threading.Thread(target=lambda: eventually(
        lambda: cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests[APPS // 2:]), check=False).returncode == 0,
        timeout=120, interval=1, message="the second half applied"))
    cluster.control_plane("stop-apiserver")
    second_half.start()
    time.sleep(OUTAGE_SECONDS)
    assert operator.process is not None and operator.process.poll() is None, "the operator exited during the outage"
    cluster.control_plane("start-apiserver")
    back = time.monotonic()
    second_half.join()

    def lagging():
        apps = cluster.kube.list(FASTAPIAPP, namespace)
        behind = [f"{a['metadata']['name']}: {condition(a, 'Ready').get('message') or 'no status'}" for a in apps
                  if condition(a, "Available").get("status") != "True"]
        return behind + [f"{APPS - len(apps)} apps missing"] * (len(apps) < APPS)

    try:
        eventually(lambda: not lagging(), timeout=240, interval=1, message=f"all {APPS} apps Available")
    except AssertionError:
        behind = lagging()
        raise AssertionError(f"{len(behind)} not converged, such as: {behind[:5]}") from None
    report(f"API server stopped {OUTAGE_SECONDS}s mid-burst of {APPS} apps: all Available after its return in",
           f"{time.monotonic() - back:.1f}s")
    assert operator.process.poll() is None, "the operator exited"

    uids = {a["metadata"]["name"]: a["metadata"]["uid"] for a in cluster.kube.list(FASTAPIAPP, namespace)}
    for kind in (DEPLOYMENT, SERVICE):
        children = cluster.kube.list(kind, namespace, "app.kubernetes.io/managed-by=fastapi-operator")
        assert sorted(c["metadata"]["name"] for c in children) == sorted(uids), f"missing or extra {kind.kind}s"
        for child in children:
            (owner,) = child["metadata"]["ownerReferences"]
            assert owner["uid"] == uids[child["metadata"]["name"]], "orphaned or re-parented child"
    replica_sets = cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
    assert len(replica_sets) == APPS, "a Deployment was made or rolled more than once"

