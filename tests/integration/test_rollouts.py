"""Production rollouts against the API: a migration Job gates the Deployment's pod template, the
PodDisruptionBudget and the pod settings are added, changed and removed exactly, and HSTS reaches
Traefik's Middleware. (Real pods, traffic, a failing migration and an eviction: the kind tier.)"""

from __future__ import annotations

import time

from fastapi_operator.meta import hsts_middleware_name, strip_prefix_middleware_name
from fastapi_operator.kube import DEPLOYMENT, DISRUPTION_BUDGET, INGRESS, JOB, MIDDLEWARE
from fastapi_operator.render.migration import migration_selector
from tests.harness import condition, eventually
from tests.integration.test_convergence import events, pod_of, reconciled_at
from tests.manifests import TEST_IMAGE, TEST_IMAGE_NEXT, app_manifest, full_manifest

MIGRATE = {"name": "migrate", "command": ["python", "-m", "app.migrate"], "run": "OncePerRollout"}
NOWHERE = {"fastapi-operator.dev/test-pool": "nowhere"}  # no node has it: the Job's pod never starts


def jobs_of(cluster, namespace, name):
    return sorted(cluster.kube.list(JOB, namespace, migration_selector(name)),
                  key=lambda job: job["metadata"]["creationTimestamp"])


def is_complete(job):
    return any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def applied_at(deployment):
    """When the operator last applied the Deployment (its managedFields entry's time)."""
    return next(entry["time"] for entry in deployment["metadata"]["managedFields"]
                if entry["manager"] == "fastapi-operator" and entry["operation"] == "Apply")


def test_a_migration_runs_once_as_a_job_and_the_deployment_changes_only_after_it(cluster, namespace):
    manifest = app_manifest("shop", namespace, replicas=3, preStart=[MIGRATE])
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "shop", 1), timeout=60, message="Reconciled at 1")
    deployment = cluster.get(DEPLOYMENT, namespace, "shop")
    (first,) = jobs_of(cluster, namespace, "shop")
    assert first["metadata"]["name"].startswith("shop-migrate-")
    assert is_complete(first) and first["status"]["completionTime"] <= deployment["metadata"]["creationTimestamp"]
    assert "initContainers" not in pod_of(cluster, namespace, "shop"), "the step also ran in every pod"
    eventually(lambda: [e for e in events(cluster, namespace, "Created") if "Job" in e["message"]], timeout=10,
               message="a Created Event for the Job")

    # A new image: a new Job, and the template changes only once it completed.
    manifest["spec"]["image"] = TEST_IMAGE_NEXT
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "shop", 2), timeout=60, message="Reconciled at 2")
    deployment = cluster.get(DEPLOYMENT, namespace, "shop")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == TEST_IMAGE_NEXT
    jobs = jobs_of(cluster, namespace, "shop")
    assert len(jobs) == 2 and is_complete(jobs[1])
    assert jobs[1]["spec"]["template"]["spec"]["containers"][0]["image"] == TEST_IMAGE_NEXT
    assert jobs[1]["status"]["completionTime"] <= applied_at(deployment)

    # More replicas run nothing.
    cluster.kubectl("scale", "fapp/shop", "-n", namespace, "--replicas=4")
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "shop")["spec"]["replicas"] == 4)
    time.sleep(1)
    assert len(jobs_of(cluster, namespace, "shop")) == 2

    # History: the current Job and the newest finished ones, three in all. (A new environment
    # is a new migration too; images must be real on the kind tier.)
    for generation in (4, 5):
        manifest["spec"].update(replicas=4, env=[{"name": "ROUND", "value": str(generation)}])
        cluster.apply(manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "shop", generation), timeout=60)
    eventually(lambda: len(jobs_of(cluster, namespace, "shop")) == 3, message="three Jobs kept")

    # Removed: back to an init container, and the Jobs go.
    manifest["spec"]["preStart"] = [{**MIGRATE, "run": "EveryPod"}]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "shop", 6), timeout=60)
    assert [c["name"] for c in pod_of(cluster, namespace, "shop")["initContainers"]] == ["migrate"]
    eventually(lambda: not jobs_of(cluster, namespace, "shop"), message="finished Jobs deleted")


def test_while_the_migration_cannot_finish_the_deployment_keeps_its_version(cluster, namespace):
    manifest = app_manifest("held", namespace, replicas=2, preStart=[MIGRATE])
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "held", 1), timeout=60)

    manifest["spec"].update(image=TEST_IMAGE_NEXT, nodeSelector=NOWHERE)
    cluster.apply(manifest)
    app = eventually(lambda: condition(cluster.app(namespace, "held"), "Reconciled").get("reason") == "MigrationRunning"
                     and cluster.app(namespace, "held"), message="Reconciled=False MigrationRunning")
    stuck = [j for j in jobs_of(cluster, namespace, "held") if not is_complete(j)]
    assert len(stuck) == 1 and stuck[0]["metadata"]["name"] in condition(app, "Reconciled")["message"]
    time.sleep(3)
    assert pod_of(cluster, namespace, "held")["containers"][0]["image"] == TEST_IMAGE, "rolled before the migration"
    assert condition(cluster.app(namespace, "held"), "Ready")["status"] == "False"

    # The corrected spec's Job waits for the stuck one: it is never cut short, and two never run
    # at once. The condition says how to let it go; deleting it lets the corrected Job through.
    del manifest["spec"]["nodeSelector"]
    cluster.apply(manifest)
    app = eventually(lambda: condition(cluster.app(namespace, "held"), "Reconciled").get("reason") == "MigrationQueued"
                     and cluster.app(namespace, "held"), message="Reconciled=False MigrationQueued")
    assert f"kubectl delete job -n {namespace} {stuck[0]['metadata']['name']}" in condition(app, "Reconciled")["message"]
    time.sleep(2)
    assert len(jobs_of(cluster, namespace, "held")) == 2, "the corrected Job started beside the stuck one"
    assert pod_of(cluster, namespace, "held")["containers"][0]["image"] == TEST_IMAGE
    cluster.kubectl("delete", "job", "-n", namespace, stuck[0]["metadata"]["name"])
    eventually(lambda: reconciled_at(cluster, namespace, "held", 3), timeout=60)
    assert pod_of(cluster, namespace, "held")["containers"][0]["image"] == TEST_IMAGE_NEXT
    assert len(jobs_of(cluster, namespace, "held")) == 2


def test_a_disruption_budget_is_added_and_removed_with_the_possible_replicas(cluster, namespace):
    manifest = app_manifest("budget", namespace, replicas=1)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "budget", 1))
    assert cluster.get(DISRUPTION_BUDGET, namespace, "budget") is None

    manifest["spec"]["replicas"] = 2
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "budget", 2))
    budget = cluster.get(DISRUPTION_BUDGET, namespace, "budget")
    assert budget["spec"]["maxUnavailable"] == 1 and budget["metadata"]["ownerReferences"][0]["name"] == "budget"

    manifest["spec"]["autoscaling"] = {"minReplicas": 3, "maxReplicas": 5}
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "budget", 3))
    assert cluster.get(DISRUPTION_BUDGET, namespace, "budget") is not None

    manifest["spec"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 5}
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "budget", 4))
    assert cluster.get(DISRUPTION_BUDGET, namespace, "budget") is None

    cluster.apply(app_manifest("budget", namespace, replicas=2))
    eventually(lambda: cluster.get(DISRUPTION_BUDGET, namespace, "budget"), message="budget back")
    cluster.kubectl("patch", "pdb", "budget", "-n", namespace, "--type=merge", "-p", '{"spec":{"maxUnavailable":2}}')
    eventually(lambda: cluster.get(DISRUPTION_BUDGET, namespace, "budget")["spec"]["maxUnavailable"] == 1,
               timeout=5, message="hand edit reverted")


def test_pod_settings_are_added_changed_and_removed_on_the_deployment(cluster, namespace):
    manifest = app_manifest("placed", namespace)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "placed", 1))

    settings = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}],
                "podLabels": {"team": "shop"}, "imagePullSecrets": [{"name": "registry"}],
                "serviceAccountName": "shop-api", "shutdown": {"drainSeconds": 8, "timeoutSeconds": 20}}
    manifest["spec"].update(settings)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "placed", 2))
    template = cluster.get(DEPLOYMENT, namespace, "placed")["spec"]["template"]
    assert template["spec"]["tolerations"] == settings["tolerations"]
    assert template["metadata"]["labels"]["team"] == "shop"
    assert template["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert template["spec"]["serviceAccountName"] == "shop-api"
    assert "automountServiceAccountToken" not in template["spec"]
    assert template["spec"]["terminationGracePeriodSeconds"] == 28
    assert template["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 8

    manifest["spec"]["podLabels"] = {"team": "checkout"}
    manifest["spec"]["tolerations"][0]["value"] = "checkout"
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "placed", 3))
    template = cluster.get(DEPLOYMENT, namespace, "placed")["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "checkout"
    assert template["spec"]["tolerations"][0]["value"] == "checkout"

    for field in settings:
        del manifest["spec"][field]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "placed", 4))
    template = cluster.get(DEPLOYMENT, namespace, "placed")["spec"]["template"]
    for field in ("tolerations", "imagePullSecrets"):
        assert field not in template["spec"], field
    assert template["spec"]["serviceAccountName"] == "default"
    assert "team" not in template["metadata"]["labels"]
    assert template["spec"]["automountServiceAccountToken"] is False
    assert template["spec"]["terminationGracePeriodSeconds"] == 30


def test_hsts_reaches_traefik_and_goes_when_removed(cluster, namespace):
    manifest = full_manifest("secure", namespace)
    manifest["spec"]["ingress"]["className"] = "traefik"
    cluster.apply(manifest)
    eventually(lambda: cluster.get(INGRESS, namespace, "secure"))
    assert cluster.get(MIDDLEWARE, namespace, hsts_middleware_name(namespace, "secure")) is None

    manifest["spec"]["ingress"]["hsts"] = {"maxAgeSeconds": 600}
    cluster.apply(manifest)
    hsts = eventually(lambda: cluster.get(MIDDLEWARE, namespace, hsts_middleware_name(namespace, "secure")), message="the HSTS Middleware")
    assert hsts["spec"]["headers"]["customResponseHeaders"] == {"Strict-Transport-Security": "max-age=600"}
    # The Middleware is applied before the Ingress that names it, so the router follows a moment later.
    eventually(lambda: router_middlewares(cluster, namespace) == (
        f"{namespace}-{strip_prefix_middleware_name(namespace, 'secure')}@kubernetescrd,"
        f"{namespace}-{hsts_middleware_name(namespace, 'secure')}@kubernetescrd"),
        message="the HTTPS router uses the HSTS Middleware")

    del manifest["spec"]["ingress"]["hsts"]
    cluster.apply(manifest)
    eventually(lambda: cluster.get(MIDDLEWARE, namespace, hsts_middleware_name(namespace, "secure")) is None, message="Middleware deleted")
    eventually(lambda: router_middlewares(cluster, namespace) == f"{namespace}-{strip_prefix_middleware_name(namespace, 'secure')}@kubernetescrd",
               message="the router without the HSTS Middleware")


def router_middlewares(cluster, namespace):
    annotations = cluster.get(INGRESS, namespace, "secure")["metadata"]["annotations"]
    return annotations["traefik.ingress.kubernetes.io/router.middlewares"]
