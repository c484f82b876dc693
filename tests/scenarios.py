"""Two scenarios the integration tests judge and the benchmark reports (`make bench`): a failover
between two replicas, and an API server restart in the middle of a burst of creates. Each runs
against a cluster and returns what it observed; the callers decide what passes."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from fastapi_operator.kube import FASTAPIAPP, LEASE
from fastapi_operator.leadership import LEASE_NAME
from tests.harness import Cluster, OperatorProcess, condition, eventually
from tests.manifests import SMALL_RESOURCES, app_manifest


def lease_holder(cluster: Cluster, namespace: str) -> str | None:
    lease = cluster.kube.get(LEASE, namespace, LEASE_NAME)
    return lease and lease["spec"].get("holderIdentity")


def leading(replica: OperatorProcess, identity: str | None) -> bool:
    return identity is not None and f"leading as {identity}" in replica.log_tail(100_000)


def reconciled(cluster: Cluster, namespace: str, name: str) -> bool:
    return condition(cluster.app(namespace, name), "Reconciled").get("status") == "True"


@dataclass
class Failover:
    first_holder: str
    active_made_the_first_app: bool
    standby_wrote: bool
    standby_liveness_status: int
    seconds: float  # from SIGKILL of the active replica until the standby reconciled a new app
    new_holder: str | None
    standby_leads: bool


def failover(cluster: Cluster, namespace: str, logs: Path, settings: dict[str, str], timeout: float) -> Failover:
    """Two replicas with leader election (Lease in `namespace`); an app made by the active one;
    the active one SIGKILLed, and a second app applied at once."""
    settings = {**settings, "leader_election": "true", "lease_namespace": namespace}
    replicas = [OperatorProcess(cluster, logs / f"replica-{i}.log", settings=settings) for i in range(2)]
    for replica in replicas:
        replica.start()
    try:
        first = eventually(lambda: lease_holder(cluster, namespace), message="a leader elected")
        active = eventually(lambda: next((r for r in replicas if leading(r, first)), None),
                            message="the holder says it leads")
        (standby,) = [r for r in replicas if r is not active]

        cluster.apply(app_manifest("before", namespace))
        eventually(lambda: reconciled(cluster, namespace, "before"), message="the first app reconciled")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{standby.liveness_port}/healthz", timeout=5) as answer:
                liveness = answer.status
        except urllib.error.HTTPError as error:
            liveness = error.code
        # A line per Event: "Created Service ns/before; Deployment ns/before; ...".
        active_made_it = f"Deployment {namespace}/before" in active.log_tail(100_000)
        standby_wrote = "Created" in standby.log_tail(100_000)

        active.kill()
        killed = time.monotonic()
        cluster.apply(app_manifest("after", namespace))
        eventually(lambda: reconciled(cluster, namespace, "after"), timeout=timeout, interval=0.2,
                   message="the standby reconciling")
        took = time.monotonic() - killed
        new_holder = lease_holder(cluster, namespace)
        return Failover(first, active_made_it, standby_wrote, liveness, took, new_holder, leading(standby, new_holder))
    finally:
        for replica in replicas:
            replica.stop()


def api_server_restart(cluster: Cluster, namespace: str, operator: OperatorProcess, apps: int,
                       outage_seconds: float, timeout: float = 240) -> float:
    """Half of `apps` applied, the API server stopped, the other half applied as soon as it takes
    requests again, the API server started after `outage_seconds`: the seconds from its return
    until every app is Available. The operator must live through it."""
    assert cluster.control_plane_state is not None, "only the project's own control plane can be stopped"
    manifests = [app_manifest(f"r-{i:03d}", namespace, replicas=1, resources=SMALL_RESOURCES) for i in range(apps)]
    cluster.apply(*manifests[: apps // 2])
    # kubectl retries until the API server is back.
    second_half = threading.Thread(target=lambda: eventually(
        lambda: cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests[apps // 2:]),
                                check=False).returncode == 0,
        timeout=120, interval=1, message="the second half applied"))
    cluster.control_plane("stop-apiserver")
    second_half.start()
    time.sleep(outage_seconds)
    assert operator.process is not None and operator.process.poll() is None, "the operator exited during the outage"
    cluster.control_plane("start-apiserver")
    back = time.monotonic()
    second_half.join()

    def lagging() -> list[str]:
        listed = cluster.kube.list(FASTAPIAPP, namespace)
        behind = [f"{a['metadata']['name']}: {condition(a, 'Ready').get('message') or 'no status'}" for a in listed
                  if condition(a, "Available").get("status") != "True"]
        return behind + [f"{apps - len(listed)} apps missing"] * (len(listed) < apps)

    try:
        eventually(lambda: not lagging(), timeout=timeout, interval=1, message=f"all {apps} apps Available")
    except AssertionError:
        behind = lagging()
        raise AssertionError(f"{len(behind)} not converged, such as: {behind[:5]}") from None
    return time.monotonic() - back
