"""A rollout is one unit, on the API: one migration at a time, the routing serves the running
pods while the migration holds the new ones, pods never trust forwarded headers without the
policy, and nothing starts a migration for a rollout that is then refused."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from fastapi_operator.meta import strip_prefix_middleware_name
from fastapi_operator.kube import DEPLOYMENT, INGRESS, JOB, MIDDLEWARE, NETWORK_POLICY, SERVICE
from fastapi_operator.reconcile.migrations import job_finished
from fastapi_operator.render.migration import migration_selector
from tests.harness import condition, eventually
from tests.integration.test_convergence import pod_of, reconciled_at
from tests.integration.test_rollouts import MIGRATE, is_complete, jobs_of
from tests.manifests import TEST_IMAGE, TEST_IMAGE_NEXT, app_manifest

INGRESS_SPEC = {"hosts": ["unit.example.com"], "path": "/api", "className": "traefik"}


@contextmanager
def gated(cluster, namespace):
    """A node selector that no node matches until `release()`: the migration Job's pod waits,
    as a slow migration would. Returns (the selector, release, hold)."""
    key = f"release.test/{namespace}"[:63]
    nodes = cluster.kubectl("get", "nodes", "-o", "name").stdout.split()

    def release():
        for node in nodes:
            cluster.kubectl("label", "--overwrite", node, f"{key}=go")

    def hold():
        for node in nodes:
            cluster.kubectl("label", node, f"{key}-", check=False)
    try:
        yield {key: "go"}, release, hold
    finally:
        hold()


@contextmanager
def active_jobs_watched(cluster, namespace, name):
    """Counts the most migration Jobs ever active at once, from a watch of their changes."""
    most = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            jobs = cluster.kube.list(JOB, namespace, migration_selector(name))
            most[0] = max(most[0], len([j for j in jobs if not job_finished(j)]))
            time.sleep(0.05)
    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    try:
        yield most
    finally:
        stop.set()
        thread.join()


def reason(cluster, namespace, name):
    return condition(cluster.app(namespace, name), "Reconciled").get("reason")


def test_two_image_changes_during_a_migration_never_run_two_at_once(cluster, namespace):
    with gated(cluster, namespace) as (selector, release, hold), active_jobs_watched(cluster, namespace, "shop") as most:
        release()
        manifest = app_manifest("shop", namespace, replicas=2, preStart=[MIGRATE], nodeSelector=selector)
        cluster.apply(manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "shop", 1), timeout=180)
        hold()

        manifest["spec"]["image"] = TEST_IMAGE_NEXT
        cluster.apply(manifest)
        eventually(lambda: reason(cluster, namespace, "shop") == "MigrationRunning", timeout=60, message="v2 migrating")
        (running,) = [j for j in jobs_of(cluster, namespace, "shop") if not job_finished(j)]
        # A third spec (a runnable image on every tier: a new environment is a new migration too).
        manifest["spec"]["env"] = [{"name": "RELEASE", "value": "3"}]
        cluster.apply(manifest)
        app = eventually(lambda: reason(cluster, namespace, "shop") == "MigrationQueued" and cluster.app(namespace, "shop"),
                         message="v3 queued behind v2")
        assert running["metadata"]["name"] in condition(app, "Reconciled")["message"]
        time.sleep(2)
        assert len(jobs_of(cluster, namespace, "shop")) == 2, "v3's Job started while v2's ran"
        assert pod_of(cluster, namespace, "shop")["containers"][0]["image"] == TEST_IMAGE

        release()
        eventually(lambda: reconciled_at(cluster, namespace, "shop", 3), timeout=180, message="v3 rolled")
        jobs = jobs_of(cluster, namespace, "shop")
        assert len(jobs) == 3 and all(is_complete(j) for j in jobs)
        assert jobs[2]["metadata"]["creationTimestamp"] >= jobs[1]["status"]["completionTime"]
        assert pod_of(cluster, namespace, "shop")["containers"][0]["env"] == [{"name": "RELEASE", "value": "3"}]
    assert most[0] == 1, f"{most[0]} migration Jobs were active at once"


def test_rolling_back_while_a_migration_runs_is_not_reconciled_until_it_finished(cluster, namespace):
    with gated(cluster, namespace) as (selector, release, hold):
        release()
        manifest = app_manifest("back", namespace, preStart=[MIGRATE], nodeSelector=selector)
        cluster.apply(manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "back", 1), timeout=180)
        hold()
        manifest["spec"]["image"] = TEST_IMAGE_NEXT
        cluster.apply(manifest)
        eventually(lambda: reason(cluster, namespace, "back") == "MigrationRunning")

        manifest["spec"]["image"] = TEST_IMAGE  # back to generation 1's spec, whose Job succeeded
        cluster.apply(manifest)
        eventually(lambda: reason(cluster, namespace, "back") == "MigrationQueued", message="waits for v2's Job")
        time.sleep(2)
        assert reason(cluster, namespace, "back") == "MigrationQueued", "Reconciled while a migration still runs"

        release()
        eventually(lambda: reconciled_at(cluster, namespace, "back", 3), timeout=180)
        assert len(jobs_of(cluster, namespace, "back")) == 2, "the finished Job of the spec is not run again"


def test_a_change_to_a_migration_step_alone_runs_it(cluster, namespace):
    manifest = app_manifest("step", namespace, preStart=[MIGRATE])
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "step", 1), timeout=180)
    applied = cluster.get(DEPLOYMENT, namespace, "step")["metadata"]["generation"]

    manifest["spec"]["preStart"] = [{**MIGRATE, "command": ["python", "-m", "app.migrate", "--again"]}]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "step", 2), timeout=180)
    jobs = jobs_of(cluster, namespace, "step")
    assert len(jobs) == 2 and is_complete(jobs[1])
    assert jobs[1]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "--again"
    assert cluster.get(DEPLOYMENT, namespace, "step")["metadata"]["generation"] == applied, "the pods rolled"


def test_while_a_migration_holds_the_rollout_the_routing_serves_the_old_pods(cluster, namespace):
    with gated(cluster, namespace) as (selector, release, hold):
        release()
        manifest = app_manifest("route", namespace, replicas=2, preStart=[MIGRATE], nodeSelector=selector,
                                ingress=INGRESS_SPEC, tls={"enabled": False})
        cluster.apply(manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "route", 1), timeout=180)
        before = {kind: cluster.get(kind, namespace, name)["spec"] for kind, name in (
            (INGRESS, "route"), (SERVICE, "route"), (NETWORK_POLICY, "route"), (MIDDLEWARE, strip_prefix_middleware_name(namespace, "route")))}
        hold()

        manifest["spec"].update(image=TEST_IMAGE_NEXT, port=8080, ingress={**INGRESS_SPEC, "path": "/v2"})
        cluster.apply(manifest)
        eventually(lambda: reason(cluster, namespace, "route") == "MigrationRunning")
        time.sleep(2)
        for kind, name in ((INGRESS, "route"), (SERVICE, "route"), (NETWORK_POLICY, "route"),
                           (MIDDLEWARE, strip_prefix_middleware_name(namespace, "route"))):
            assert cluster.get(kind, namespace, name)["spec"] == before[kind], f"{kind.kind} moved before the pods"
        container = pod_of(cluster, namespace, "route")["containers"][0]
        assert container["image"] == TEST_IMAGE and "/api" in container["command"]

        release()
        eventually(lambda: reconciled_at(cluster, namespace, "route", 2), timeout=180)
        ingress = cluster.get(INGRESS, namespace, "route")
        assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"].startswith("/v2")
        assert "/v2" in pod_of(cluster, namespace, "route")["containers"][0]["command"]
        deployment = cluster.get(DEPLOYMENT, namespace, "route")
        assert deployment["status"]["updatedReplicas"] == deployment["status"]["replicas"] == 2, \
            "Reconciled while old pods still ran"


def test_pods_that_trust_forwarded_headers_never_run_without_the_policy(cluster, namespace):
    # Someone else's NetworkPolicy holds the app's name: the operator cannot make its own.
    cluster.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "trusting", "namespace": namespace},
                   "spec": {"podSelector": {"matchLabels": {"team": "other"}}, "policyTypes": ["Ingress"]}})
    made = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            if cluster.get(DEPLOYMENT, namespace, "trusting") is not None:
                made.append(True)
            time.sleep(0.02)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    cluster.apply(app_manifest("trusting", namespace, ingress={"hosts": ["trusting.example.com"]},
                               tls={"enabled": False}))
    eventually(lambda: reason(cluster, namespace, "trusting") == "Conflict", message="Conflict")
    time.sleep(3)
    stop.set()
    thread.join()
    assert not made, "a Deployment trusting forwarded headers existed without the app's NetworkPolicy"


def test_a_stale_policy_goes_only_once_no_pod_trusts_forwarded_headers(cluster, namespace):
    manifest = app_manifest("stale", namespace, replicas=3, ingress={"hosts": ["stale.example.com"]},
                            tls={"enabled": False})
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "stale", 1), timeout=180)
    old_generation = cluster.get(DEPLOYMENT, namespace, "stale")["metadata"]["generation"]
    del manifest["spec"]["ingress"]
    deleted_while = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            deployment = cluster.get(DEPLOYMENT, namespace, "stale")
            if cluster.get(NETWORK_POLICY, namespace, "stale") is None:
                status = deployment["status"]
                deleted_while.append(deployment["metadata"]["generation"] > old_generation
                                     and status.get("observedGeneration") == deployment["metadata"]["generation"]
                                     and status.get("updatedReplicas") == status.get("replicas"))
                return
            time.sleep(0.02)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "stale", 2), timeout=180)
    thread.join(timeout=10)
    stop.set()
    assert deleted_while == [True], "the NetworkPolicy went while pods trusting forwarded headers still ran"
    assert "127.0.0.1" in pod_of(cluster, namespace, "stale")["containers"][0]["command"]


def test_a_refused_rollout_starts_no_migration(cluster, namespace):
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "refused", "namespace": namespace},
                   "spec": {"ports": [{"port": 80}]}})
    cluster.apply(app_manifest("refused", namespace, preStart=[MIGRATE]))
    eventually(lambda: reason(cluster, namespace, "refused") == "Conflict", message="Conflict")
    # The Job's pod passes (its step has an environment of its own); the Deployment's does not.
    cluster.apply(app_manifest("badenv", namespace, env=[{"name": "A=B", "value": "x"}],
                               preStart=[{**MIGRATE, "env": [{"name": "OK", "value": "1"}]}]))
    app = eventually(lambda: reason(cluster, namespace, "badenv") == "InvalidSpec" and cluster.app(namespace, "badenv"))
    assert "Deployment" in condition(app, "Reconciled")["message"]
    time.sleep(2)
    assert jobs_of(cluster, namespace, "refused") == [] and jobs_of(cluster, namespace, "badenv") == []
    assert cluster.get(SERVICE, namespace, "badenv") is None, "a half-made app"


def test_a_migration_that_cannot_start_fails_at_its_deadline_and_says_what_to_do(cluster, namespace):
    cluster.apply(app_manifest("late", namespace, preStart=[MIGRATE], migrationDeadlineSeconds=10,
                               nodeSelector={"fastapi-operator.dev/test-pool": "nowhere"}))
    app = eventually(lambda: reason(cluster, namespace, "late") == "MigrationFailed" and cluster.app(namespace, "late"),
                     timeout=180, message="MigrationFailed at the deadline")
    message = condition(app, "Reconciled")["message"]
    assert "spec.migrationDeadlineSeconds (10 s)" in message and "kubectl describe job" in message
    assert cluster.get(DEPLOYMENT, namespace, "late") is None


def test_a_users_own_server_variable_wins_once_with_a_custom_command(cluster, namespace):
    cluster.apply(app_manifest("own", namespace, command=["uvicorn", "app.main:app"],
                               env=[{"name": "UVICORN_HOST", "value": "::"}]))
    eventually(lambda: reconciled_at(cluster, namespace, "own", 1), message="the API server accepts the Deployment")
    env = pod_of(cluster, namespace, "own")["containers"][0]["env"]
    assert [v["value"] for v in env if v["name"] == "UVICORN_HOST"] == ["::"]
