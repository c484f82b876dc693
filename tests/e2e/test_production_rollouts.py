"""Production rollouts on real pods, under steady traffic through Traefik: a migration runs once
per rollout before any new pod, a failing one holds the old version, and evictions of a
two-replica app never leave it without a ready pod."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import yaml

from tests.e2e import rig
from tests.e2e.test_user_path import condition, get, kubectl, rolled_to
from tests.e2e.traffic import SteadyTraffic
from tests.harness import eventually

HOST = f"rollouts.{rig.TEST_DOMAIN}"
MIGRATION_LOG = "migrations: nothing to do"  # what examples/hello/app/migrate.py prints
MINIMUM_RATE = 20  # requests a second, as the issue asks


def manifest(namespace: str, image: str, replicas: int, migrate: list[str] | None = None) -> dict:
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "image": image, "replicas": replicas, "healthPath": "/health",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
            "preStart": [{"name": "migrate", "command": migrate or ["python", "-m", "app.migrate"],
                          "run": "OncePerRollout"}],
            "ingress": {"hosts": [HOST], "className": "traefik"},
            "tls": {"enabled": False},
        },
    }


@pytest.fixture(scope="module")
def namespace(kind_cluster) -> str:
    name = f"e2e-rollouts-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", name)
    return name


def apply(cluster, document: dict) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(document))


def deployment_rolled_to(cluster, namespace: str, image: str, replicas: int) -> bool:
    return rolled_to(cluster, namespace, "shop", image, replicas)


def jobs(cluster, namespace: str) -> list[dict]:
    listed = json.loads(kubectl(cluster, "get", "jobs", "-n", namespace, "-l",
                                "app.kubernetes.io/component=migration", "-o", "json"))["items"]
    return sorted(listed, key=lambda job: job["metadata"]["creationTimestamp"])


@pytest.fixture(scope="module")
def serving(kind_cluster, namespace) -> None:
    apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, 3))
    eventually(lambda: deployment_rolled_to(kind_cluster, namespace, rig.HELLO_IMAGE, 3), timeout=180, interval=1,
               message="3 pods of the first version")
    with SteadyTraffic(HOST, "/health", clients=1, interval=0.5) as probe:
        eventually(lambda: probe.statuses and probe.statuses[-1] == 200, timeout=30, message="Traefik routing")


def test_a_migration_runs_once_before_any_new_pod_and_the_rollout_fails_no_request(
        kind_cluster, namespace, serving, report):
    with SteadyTraffic(HOST, "/health") as traffic:
        time.sleep(2)
        started = time.monotonic()
        apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE_NEXT, 3))
        eventually(lambda: deployment_rolled_to(kind_cluster, namespace, rig.HELLO_IMAGE_NEXT, 3), timeout=240,
                   interval=1, message="rolled out to the next image")
        rollout = time.monotonic() - started
        time.sleep(3)
    report("kind: rollout with a migration, 3 replicas", f"{rollout:.0f}s, {traffic.summary()}")
    assert traffic.rate >= MINIMUM_RATE, f"too little traffic to judge the rollout: {traffic.summary()}"
    assert traffic.failed == 0, traffic.summary()

    job = next(j for j in jobs(kind_cluster, namespace)
               if j["spec"]["template"]["spec"]["containers"][0]["image"] == rig.HELLO_IMAGE_NEXT)
    name = job["metadata"]["name"]
    assert job["status"].get("succeeded") == 1 and not job["status"].get("failed")
    runs = json.loads(kubectl(kind_cluster, "get", "pods", "-n", namespace, "-l", f"job-name={name}", "-o", "json"))["items"]
    assert len(runs) == 1, f"the migration ran in {len(runs)} pods"
    assert kubectl(kind_cluster, "logs", "-n", namespace, f"job/{name}").strip() == MIGRATION_LOG
    pods = json.loads(kubectl(kind_cluster, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=shop",
                              "-o", "json"))["items"]
    new_pods = [p for p in pods if p["spec"]["containers"][0]["image"] == rig.HELLO_IMAGE_NEXT]
    assert len(new_pods) == 3
    for pod in new_pods:
        assert "initContainers" not in pod["spec"], "the migration also ran in the app's pods"
        assert pod["metadata"]["creationTimestamp"] >= job["status"]["completionTime"], "a new pod before the migration"


def test_a_failing_migration_holds_the_old_version_and_fails_no_request(kind_cluster, namespace, serving, report):
    failing = ["python", "-c", "import sys; print('cannot reach the database'); sys.exit(3)"]
    with SteadyTraffic(HOST, "/health") as traffic:
        apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, 3, migrate=failing))
        app = eventually(lambda: condition(get(kind_cluster, "fapp", "shop", namespace), "Reconciled").get("reason")
                         == "MigrationFailed" and get(kind_cluster, "fapp", "shop", namespace), timeout=120, interval=1,
                         message="Reconciled=False MigrationFailed")
        time.sleep(5)
    report("kind: failing migration, old version kept", traffic.summary())
    assert traffic.failed == 0, traffic.summary()
    message = condition(app, "Reconciled")["message"]
    (failed_job,) = [j for j in jobs(kind_cluster, namespace) if j["status"].get("failed")]
    assert failed_job["metadata"]["name"] in message and "kubectl logs" in message, message
    assert "cannot reach the database" in kubectl(kind_cluster, "logs", "-n", namespace, f"job/{failed_job['metadata']['name']}")
    assert deployment_rolled_to(kind_cluster, namespace, rig.HELLO_IMAGE_NEXT, 3), "the rollout was not held"
    events = kubectl(kind_cluster, "get", "events", "-n", namespace, "--field-selector", "reason=MigrationFailed")
    assert failed_job["metadata"]["name"] in events

    # The corrected spec starts a new Job and the rollout goes through.
    apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, 3))
    eventually(lambda: deployment_rolled_to(kind_cluster, namespace, rig.HELLO_IMAGE, 3), timeout=240, interval=1,
               message="rolled out once the migration was fixed")


def ready_endpoints(cluster, namespace: str) -> int:
    slices = json.loads(kubectl(cluster, "get", "endpointslices", "-n", namespace, "-l",
                                "kubernetes.io/service-name=shop", "-o", "json"))["items"]
    return sum(1 for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready"))


def serving_pods(cluster, namespace: str) -> list[str]:
    listed = json.loads(kubectl(cluster, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=shop",
                                "-o", "json"))["items"]
    return [p["metadata"]["name"] for p in listed if not p["metadata"].get("deletionTimestamp")]


def evict(cluster, namespace: str, pod: str) -> bool:
    """The Eviction API, as `kubectl drain` uses it: False when a PodDisruptionBudget refuses (429)."""
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}})
    result = cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                             stdin=body, check=False, timeout=30)
    if result.returncode and "disruption budget" not in result.stderr.lower():
        raise AssertionError(f"eviction of {pod}: {result.stderr}")
    return result.returncode == 0


def test_evicting_both_pods_of_a_two_replica_app_never_leaves_it_without_a_ready_pod(
        kind_cluster, namespace, serving, report):
    apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE, 2))
    eventually(lambda: deployment_rolled_to(kind_cluster, namespace, rig.HELLO_IMAGE, 2)
               and get(kind_cluster, "pdb", "shop", namespace), timeout=120, interval=1, message="2 pods and a budget")
    # Only the two pods that stay: the scale-down from 3 leaves one terminating for a while.
    pods = eventually(lambda: len(serving_pods(kind_cluster, namespace)) == 2 and serving_pods(kind_cluster, namespace),
                      timeout=60, interval=1, message="exactly 2 pods, none terminating")
    eventually(lambda: ready_endpoints(kind_cluster, namespace) == 2, timeout=60, message="2 ready endpoints")
    lowest, refused = 2, 0
    with SteadyTraffic(HOST, "/health") as traffic:
        assert evict(kind_cluster, namespace, pods[0])
        deadline = time.monotonic() + 180
        while not evict(kind_cluster, namespace, pods[1]):
            refused += 1
            lowest = min(lowest, ready_endpoints(kind_cluster, namespace))
            assert time.monotonic() < deadline, "the second eviction was never allowed"
            time.sleep(0.5)
        for _ in range(20):
            lowest = min(lowest, ready_endpoints(kind_cluster, namespace))
            time.sleep(0.5)
    report("kind: two evictions of a 2-replica app", f"lowest ready {lowest}, second eviction refused {refused} "
                                                     f"times by the budget, {traffic.summary()}")
    assert refused > 0, "the PodDisruptionBudget never held the second eviction back"
    assert lowest >= 1
    assert traffic.failed == 0, traffic.summary()
