"""A rollout is one unit, on real pods under steady traffic through Traefik: a port and path change
held by a 20 s migration drops no request, a failing one keeps the old version serving, and two
image changes 5 s apart never run two migration pods at once."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid

import pytest

from tests.e2e import rig
from tests.e2e.test_production_rollouts import MINIMUM_RATE, apply
from tests.e2e.test_user_path import condition, get, kubectl, rolled_to
from tests.e2e.traffic import SteadyTraffic
from tests.harness import eventually

HOST = f"unit.{rig.TEST_DOMAIN}"
MIGRATE = ["python", "-m", "app.migrate"]


def slow(seconds: int, fail: bool = False) -> list[str]:
    """The example app's migration after `seconds` (a migration that takes a while), or a failure."""
    then = "raise SystemExit('cannot reach the database')" if fail else \
        "import runpy; runpy.run_module('app.migrate', run_name='__main__')"
    return ["python", "-c", f"import time; time.sleep({seconds}); {then}"]


def manifest(namespace: str, image: str, *, port: int = 8000, path: str = "/api", migrate: list[str] = MIGRATE) -> dict:
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": "unit", "namespace": namespace},
        "spec": {
            "image": image, "replicas": 2, "port": port, "healthPath": "/health",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
            "preStart": [{"name": "migrate", "command": migrate, "run": "OncePerRollout"}],
            "ingress": {"hosts": [HOST], "path": path, "className": "traefik"},
            "tls": {"enabled": False},
        },
    }


@pytest.fixture(scope="module")
def namespace(kind_cluster) -> str:
    name = f"e2e-unit-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", name)
    apply(kind_cluster, manifest(name, rig.HELLO_IMAGE))
    eventually(lambda: rolled_to(kind_cluster, name, "unit", rig.HELLO_IMAGE, 2), timeout=180, interval=1,
               message="2 pods of the first version")
    with SteadyTraffic(HOST, "/api/health", clients=1, interval=0.5) as probe:
        eventually(lambda: probe.statuses and probe.statuses[-1] == 200, timeout=30, message="Traefik routing")
    return name


def ingress_path(cluster, namespace: str) -> str:
    return get(cluster, "ingress", "unit", namespace)["spec"]["rules"][0]["http"]["paths"][0]["path"]


def when_the_ingress_moves(cluster, namespace: str, old: str, image: str) -> list[tuple[float, bool]]:
    """A thread that records the moment the Ingress's path stops being `old`, and whether every pod
    ran `image` by then (the routing moves only after the new pods replaced the old ones)."""
    moved: list[tuple[float, bool]] = []

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not moved:
            if not ingress_path(cluster, namespace).startswith(old):
                moved.append((time.monotonic(), rolled_to(cluster, namespace, "unit", image, 2)))
            time.sleep(0.2)
    threading.Thread(target=watch, daemon=True).start()
    return moved


def reconciled(cluster, namespace: str) -> str:
    return condition(get(cluster, "fapp", "unit", namespace), "Reconciled").get("reason", "")


# A request sent this long before Traefik serves the new path may reach it after it moved: a 404 on
# the old path, which the user's edit asked for. Any other failure there (a 502, 503 or 504: no pod
# behind the route, or one the NetworkPolicy refuses) is a drop.
IN_FLIGHT = 2.0


def test_a_port_and_path_change_held_by_a_slow_migration_fails_no_request(kind_cluster, namespace, report):
    moved = when_the_ingress_moves(kind_cluster, namespace, "/api", rig.HELLO_IMAGE_NEXT)
    with SteadyTraffic(HOST, "/api/health") as old_path, SteadyTraffic(HOST, "/v2/health", clients=1) as new_path:
        time.sleep(2)
        started = time.monotonic()
        apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE_NEXT, port=8080, path="/v2", migrate=slow(20)))
        eventually(lambda: reconciled(kind_cluster, namespace) == "MigrationRunning", timeout=30, interval=0.5)
        eventually(lambda: moved, timeout=240, interval=1, message="the routing moved to /v2")
        # Traefik reloads its routers within a moment of the Ingress changing.
        time.sleep(15)
        took = time.monotonic() - started
    # The routing moved when Traefik first served the new path: the old path's routers went in the
    # same reload. Polling the Ingress sees the change up to a second late, so it is only a bound.
    served = new_path.first_ok_after(started)
    assert served is not None, f"the new path never answered: {new_path.summary()}"
    switch = served - IN_FLIGHT
    before = old_path.failures_between(0, switch), old_path.sent_between(0, switch)
    at_the_switch = {status: count for status, count in old_path.failures_between(switch, served + 5).items()
                     if status != 404}
    after = new_path.failures_between(served + 5, float("inf")), new_path.sent_between(served + 5, float("inf"))
    report("kind: port and path change, 20 s migration",
           f"{took:.0f}s; old path until {IN_FLIGHT:.0f} s before Traefik served the new one: "
           f"{sum(before[0].values())} failed of {before[1]}; new path from 5 s after: "
           f"{sum(after[0].values())} failed of {after[1]}; the Ingress was seen moving "
           f"{moved[0][0] - served:+.1f} s from then; failures other than 404 at the switch: {at_the_switch}")
    assert moved[0][1], "the routing moved before the new pods replaced the old ones"
    assert rolled_to(kind_cluster, namespace, "unit", rig.HELLO_IMAGE_NEXT, 2)
    assert before[1] / (switch - started + 2) >= MINIMUM_RATE, "too little traffic to judge"
    when = [f"{sent - served:+.1f}s: {status}" for sent, status in old_path.samples if sent < switch and status != 200]
    assert not before[0], f"requests failed on the old path before the routing moved (sent, from when Traefik " \
                          f"served the new path: status): {when}"
    assert not at_the_switch, f"requests failed on the old path as the routing moved (status: count): {at_the_switch}"
    assert after[1] > 0 and not after[0], f"requests failed on the new path after it moved: {after[0]} of {after[1]}"


def test_a_failing_migration_keeps_the_old_version_serving_for_a_minute(kind_cluster, namespace, report):
    current = ingress_path(kind_cluster, namespace)
    with SteadyTraffic(HOST, f"{current}/health") as traffic:
        apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, port=8000, path="/other",
                                     migrate=slow(1, fail=True)))
        eventually(lambda: reconciled(kind_cluster, namespace) == "MigrationFailed", timeout=120, interval=1)
        time.sleep(60)
    report("kind: failing migration with a port and path change, 60 s after", traffic.summary())
    assert traffic.rate >= MINIMUM_RATE and traffic.failed == 0, traffic.summary()
    assert ingress_path(kind_cluster, namespace).startswith(current), "the routing moved to a version never started"
    assert rolled_to(kind_cluster, namespace, "unit", rig.HELLO_IMAGE_NEXT, 2), "the old version stopped"


def migration_pod_runs(cluster, namespace: str) -> list[tuple[str, str, str]]:
    pods = json.loads(kubectl(cluster, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=migration",
                              "-o", "json"))["items"]
    runs = []
    for pod in pods:
        for status in pod["status"].get("containerStatuses") or []:
            terminated = status.get("state", {}).get("terminated") or {}
            running = status.get("state", {}).get("running") or {}
            start = terminated.get("startedAt") or running.get("startedAt")
            if start:
                runs.append((start, terminated.get("finishedAt") or "9999", pod["metadata"]["name"]))
    return sorted(runs)


def test_two_image_changes_5_s_apart_never_run_two_migrations_at_once(kind_cluster, namespace, report):
    apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, migrate=slow(10)))
    time.sleep(5)
    apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE_NEXT, migrate=slow(10)))
    eventually(lambda: rolled_to(kind_cluster, namespace, "unit", rig.HELLO_IMAGE_NEXT, 2)
               and reconciled(kind_cluster, namespace) == "Reconciled", timeout=240, interval=1,
               message="the second change rolled out")
    runs = migration_pod_runs(kind_cluster, namespace)
    recent = runs[-2:]
    report("kind: two image changes 5 s apart", "; ".join(f"{name} {start} - {end}" for start, end, name in recent))
    assert len(recent) == 2
    (first_start, first_end, _), (second_start, _, _) = recent
    assert second_start >= first_end, f"two migration pods ran at once: {recent}"


def test_keep_alive_traffic_through_traefik_for_a_minute_fails_no_request(kind_cluster, namespace, report):
    """Requests a few seconds apart on kept-alive connections: Traefik reuses its idle upstream
    connections (90 s), so an app that closed them at uvicorn's default 5 s would meet requests on
    a closing connection, which Traefik answers 502 (a POST is never retried)."""
    path = ingress_path(kind_cluster, namespace).split("(")[0].rstrip("/") or ""
    answers: list[int] = []

    def client(offset: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", rig.HTTP_PORT, timeout=10)
        deadline = time.monotonic() + 60
        time.sleep(offset)
        method = "POST"
        while time.monotonic() < deadline:
            try:
                connection.request(method, f"{path}/health", body=b"" if method == "POST" else None,
                                   headers={"Host": HOST})
                response = connection.getresponse()
                response.read()
                answers.append(response.status)
            except (OSError, http.client.HTTPException):
                answers.append(0)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", rig.HTTP_PORT, timeout=10)
            method = "GET" if method == "POST" else "POST"
            time.sleep(4.5 + (offset % 1.5))  # around uvicorn's default 5 s
        connection.close()

    threads = [threading.Thread(target=client, args=(i * 0.37,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The app answers a POST to /health 405 itself; a 5xx or a broken connection is the proxy's.
    failed = [status for status in answers if status == 0 or status >= 500]
    report("kind: keep-alive traffic through Traefik, 60 s", f"{len(failed)} failed of {len(answers)} requests "
           f"(12 kept-alive clients, a request every 4.5-6 s each)")
    assert len(answers) >= 100 and not failed, f"{len(failed)} of {len(answers)}: {sorted(set(failed))}"
