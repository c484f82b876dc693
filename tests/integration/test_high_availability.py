"""Two replicas, one active: a Lease elects the one that reconciles, the standby stays healthy and
writes nothing, and takes over within 15 s when the active one is killed."""

from __future__ import annotations

import time
import urllib.request

from fastapi_operator.kube import LEASE
from fastapi_operator.leadership import LEASE_NAME
from tests.harness import OperatorProcess, condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.manifests import app_manifest

TAKEOVER_LIMIT_SECONDS = 15


def holder(cluster, namespace):
    lease = cluster.kube.get(LEASE, namespace, LEASE_NAME)
    return lease and lease["spec"].get("holderIdentity")


def leading(replica: OperatorProcess, identity: str) -> bool:
    return f"leading as {identity}" in replica.log_tail(100_000)


def test_two_replicas_one_active_and_the_standby_takes_over_within_fifteen_seconds(
        cluster, namespace, operator_paused, tmp_path, report):
    settings = {**SESSION_SETTINGS, "leader_election": "true", "lease_namespace": namespace}
    replicas = [OperatorProcess(cluster, tmp_path / f"replica-{i}.log", settings=settings) for i in range(2)]
    for replica in replicas:
        replica.start()
    try:
        first = eventually(lambda: holder(cluster, namespace), message="a leader elected")
        active = eventually(lambda: next((r for r in replicas if leading(r, first)), None),
                            message="the holder says it leads")
        (standby,) = [r for r in replicas if r is not active]

        cluster.apply(app_manifest("before", namespace))
        eventually(lambda: condition(cluster.app(namespace, "before"), "Reconciled").get("status") == "True")
        assert "Created Deployment" in active.log_tail(100_000)
        assert "Created" not in standby.log_tail(100_000), "the standby wrote"
        with urllib.request.urlopen(f"http://127.0.0.1:{standby.liveness_port}/healthz", timeout=5) as answer:
            assert answer.status == 200, "the standby must report healthy"

        active.kill()
        killed = time.monotonic()
        cluster.apply(app_manifest("after", namespace))
        eventually(lambda: condition(cluster.app(namespace, "after"), "Reconciled").get("status") == "True",
                   timeout=TAKEOVER_LIMIT_SECONDS + 5, interval=0.2, message="the standby reconciling")
        took = time.monotonic() - killed
        report("HA: active replica SIGKILLed, standby reconciled a new app after", f"{took:.1f}s")
        assert took <= TAKEOVER_LIMIT_SECONDS
        assert holder(cluster, namespace) != first and leading(standby, holder(cluster, namespace))
    finally:
        for replica in replicas:
            replica.stop()
