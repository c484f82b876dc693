"""An API server restart in the middle of a burst: the operator's watches and requests fail, it
neither crashes nor makes anything twice, and everything converges once the API server is back.
It stops the project's own control plane, so it runs there only (`-m "not own_control_plane"`
leaves it out on any other cluster, such as the kind tier's run of this suite)."""

from __future__ import annotations

import os

import pytest

from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP, SERVICE
from tests.scenarios import api_server_restart

pytestmark = pytest.mark.own_control_plane
APPS = int(os.environ.get("FASTAPI_OPERATOR_TEST_RESTART_APPS", "200"))
OUTAGE_SECONDS = 5


def test_an_api_server_restart_during_a_burst_of_creates_converges_without_duplicates_or_orphans(
        cluster, namespace, operator, report):
    if cluster.control_plane_state is None:
        pytest.fail("this test stops the API server, which only the project's own control plane allows: "
                    "deselect it with -m 'not own_control_plane'")
    logged_before = operator.log_path.stat().st_size if operator.log_path.exists() else 0
    seconds = api_server_restart(cluster, namespace, operator, APPS, OUTAGE_SECONDS)
    report(f"API server stopped {OUTAGE_SECONDS}s mid-burst of {APPS} apps: all Available after its return in",
           f"{seconds:.1f}s")
    assert operator.process is not None and operator.process.poll() is None, "the operator exited"
    with open(operator.log_path, "rb") as log:
        log.seek(logged_before)
        logged = log.read().decode(errors="replace")
    assert "failed unexpectedly" not in logged, \
        "an API server away is an expected failure (a warning and a retry), not a traceback at error level"

    uids = {a["metadata"]["name"]: a["metadata"]["uid"] for a in cluster.kube.list(FASTAPIAPP, namespace)}
    for kind in (DEPLOYMENT, SERVICE):
        children = cluster.kube.list(kind, namespace, "app.kubernetes.io/managed-by=fastapi-operator")
        assert sorted(c["metadata"]["name"] for c in children) == sorted(uids), f"missing or extra {kind.kind}s"
        for child in children:
            (owner,) = child["metadata"]["ownerReferences"]
            assert owner["uid"] == uids[child["metadata"]["name"]], "orphaned or re-parented child"
    replica_sets = cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
    assert len(replica_sets) == APPS, "a Deployment was made or rolled more than once"
