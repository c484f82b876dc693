"""Converge exactly: what the spec drops leaves the children, hand edits to what is the
operator's are reverted, the autoscaler hand-off never lowers the replica count, and status
says Reconciled=True only when every child says what the spec renders."""

from __future__ import annotations

import threading
import time

import yaml

from fastapi_operator.kube import AUTOSCALER, DEPLOYMENT, INGRESS
from tests.harness import condition, eventually
from tests.manifests import TEST_IMAGE_NEXT, app_manifest, full_manifest


def pod_of(cluster, namespace, name):
    return cluster.get(DEPLOYMENT, namespace, name)["spec"]["template"]["spec"]


def reconciled_at(cluster, namespace, name, generation):
    app = cluster.app(namespace, name)
    reconciled = condition(app, "Reconciled")
    return reconciled.get("status") == "True" and reconciled.get("observedGeneration") == generation


def replace(cluster, manifest):
    """As a user edits a file and runs `kubectl apply` again: dropped fields are removed."""
    cluster.apply(manifest)


def events(cluster, namespace, reason):
    listed = cluster.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout
    return [e for e in yaml.safe_load(listed)["items"]
            if e.get("source", {}).get("component") == "fastapi-operator" and e["reason"] == reason]


def test_a_field_is_added_changed_and_removed_on_the_deployment(cluster, namespace):
    manifest = app_manifest("env", namespace)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "env", 1))

    # Added.
    manifest["spec"]["env"] = [{"name": "APP_VERSION", "value": "1.1"}, {"name": "SAMPLE_RATE", "value": "0.5"}]
    replace(cluster, manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "env", 2))
    assert pod_of(cluster, namespace, "env")["containers"][0]["env"] == manifest["spec"]["env"]

    # Changed to values equal as numbers or quantities, but not as strings.
    manifest["spec"]["env"] = [{"name": "APP_VERSION", "value": "1.10"}, {"name": "SAMPLE_RATE", "value": "500m"}]
    replace(cluster, manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "env", 3))
    assert pod_of(cluster, namespace, "env")["containers"][0]["env"] == manifest["spec"]["env"]

    # Removed.
    del manifest["spec"]["env"]
    replace(cluster, manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "env", 4))
    assert "env" not in pod_of(cluster, namespace, "env")["containers"][0]


def test_removing_env_env_from_a_pre_start_step_and_a_cpu_limit_reaches_the_deployment(cluster, namespace):
    manifest = app_manifest(
        "shrink", namespace,
        env=[{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
        envFrom=[{"secretRef": {"name": "app-secrets"}}],
        preStart=[{"name": "migrate", "command": ["alembic", "upgrade", "head"]}],
        resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    )
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "shrink", 1))
    pod = pod_of(cluster, namespace, "shrink")
    assert pod["initContainers"] and pod["containers"][0]["envFrom"]

    for field in ("env", "envFrom", "preStart"):
        del manifest["spec"][field]
    manifest["spec"]["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    replace(cluster, manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "shrink", 2), message="Reconciled at generation 2")
    pod = pod_of(cluster, namespace, "shrink")
    container = pod["containers"][0]
    assert "initContainers" not in pod
    assert "env" not in container and "envFrom" not in container
    assert container["resources"]["limits"] == {"memory": "256Mi"}


def test_hand_edits_that_weaken_security_are_reverted_and_rollout_restart_still_works(cluster, namespace):
    manifest = full_manifest("guarded", namespace)
    del manifest["spec"]["autoscaling"]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "guarded", 1))
    time.sleep(1)

    cluster.kubectl("patch", "deployment", "guarded", "-n", namespace, "--type=strategic", "-p", yaml.safe_dump({
        "spec": {"template": {"spec": {
            "hostNetwork": True,
            "containers": [{"name": "app", "securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}},
                           {"name": "miner", "image": "evil:1"}]}}}}))
    cluster.kubectl("annotate", "ingress", "guarded", "-n", namespace,
                    "nginx.ingress.kubernetes.io/configuration-snippet=return 200;",
                    "example.com/owner=team-a")
    started = time.monotonic()

    def reverted():
        pod = pod_of(cluster, namespace, "guarded")
        annotations = cluster.get(INGRESS, namespace, "guarded")["metadata"]["annotations"]
        return ("hostNetwork" not in pod and [c["name"] for c in pod["containers"]] == ["app"]
                and "runAsUser" not in pod["containers"][0]["securityContext"]
                and "add" not in pod["containers"][0]["securityContext"]["capabilities"]
                and "nginx.ingress.kubernetes.io/configuration-snippet" not in annotations)
    eventually(reverted, timeout=5, message="the hand edits reverted")
    elapsed = time.monotonic() - started
    annotations = cluster.get(INGRESS, namespace, "guarded")["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "team-a", "an annotation that changes no controller is left alone"
    assert pod_of(cluster, namespace, "guarded")["securityContext"]["runAsUser"] == 10001
    # The Event is posted after the patch it reports.
    eventually(lambda: events(cluster, namespace, "Reverted"), timeout=10, message="a Reverted Event tells the user")
    print(f"hand edits reverted in {elapsed:.2f}s")

    cluster.kubectl("rollout", "restart", "deployment/guarded", "-n", namespace)
    restarted = eventually(lambda: cluster.get(DEPLOYMENT, namespace, "guarded"))
    generation = restarted["metadata"]["generation"]
    time.sleep(3)
    after = cluster.get(DEPLOYMENT, namespace, "guarded")
    assert "kubectl.kubernetes.io/restartedAt" in after["spec"]["template"]["metadata"]["annotations"]
    assert after["metadata"]["generation"] == generation, "the operator fought the restart"


def test_the_autoscaler_hand_off_never_lowers_the_replica_count(cluster, namespace):
    manifest = app_manifest("scaled", namespace, replicas=4)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "scaled", 1)
               and cluster.get(DEPLOYMENT, namespace, "scaled")["spec"]["replicas"] == 4)

    seen: list[int] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            deployment = cluster.get(DEPLOYMENT, namespace, "scaled")
            seen.append(deployment["spec"].get("replicas"))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        manifest["spec"]["autoscaling"] = {"minReplicas": 4, "maxReplicas": 8}
        replace(cluster, manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "scaled", 2)
                   and cluster.get(AUTOSCALER, namespace, "scaled"))
        manifest["spec"]["image"] = TEST_IMAGE_NEXT
        replace(cluster, manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "scaled", 3))
        time.sleep(2)
        # And back: the operator owns the count again and sets the spec's.
        del manifest["spec"]["autoscaling"]
        replace(cluster, manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "scaled", 4)
                   and cluster.get(AUTOSCALER, namespace, "scaled") is None)
        time.sleep(2)
    finally:
        stop.set()
        watcher.join()
    assert len(seen) > 50, "the watcher sampled too little to judge"
    assert min(seen) == 4, f"spec.replicas dipped to {min(seen)} during the hand-off"
    assert cluster.get(DEPLOYMENT, namespace, "scaled")["spec"]["replicas"] == 4
