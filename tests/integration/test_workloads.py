"""Workers, schedules, volumes and sidecars against the real API server: each added, changed and
removed reaches its child exactly; a hand edit is reverted and a hand suspension kept; the
migration gate holds every worker and schedule of a new version while the migration runs and
after it failed, and suspends the schedules while it runs. (Real pods, a queue, a run on its
schedule and a sidecar serving a file: tests/e2e/test_workloads.py.)"""

from __future__ import annotations

import copy
import re

from fastapi_operator.kube import AUTOSCALER, CRON_JOB, DEPLOYMENT
from tests.harness import condition, eventually
from tests.integration.test_convergence import events, pod_of, reconciled_at
from tests.integration.test_rollout_as_one_unit import gated, reason
from tests.integration.test_rollouts import MIGRATE, NOWHERE, jobs_of
from tests.manifests import PARTS, TEST_IMAGE, TEST_IMAGE_NEXT, app_manifest

# A worker that runs on any image (on kind too, where the suite runs once more with real pods).
WORKER = {"name": "queue", "command": ["sleep", "infinity"]}
SCHEDULE = {"name": "nightly", "schedule": "0 3 * * *", "command": ["python", "-m", "app.cleanup"]}


def container(obj):
    spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if obj["kind"] == "CronJob" else \
        obj["spec"]["template"]["spec"]
    return spec["containers"][0]


def init_names(pod_spec):
    return [c["name"] for c in pod_spec.get("initContainers", [])]


def test_every_part_added_changed_and_removed_reaches_its_child(cluster, namespace):
    manifest = app_manifest("parts", namespace, replicas=1)
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "parts", 1), timeout=60)
    assert "partsSummary" not in cluster.app(namespace, "parts")["status"]

    # Added: a worker, a schedule, five volumes, a sidecar.
    manifest["spec"].update(copy.deepcopy(PARTS))
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "parts", 2), timeout=60, message="the parts made")
    worker = cluster.get(DEPLOYMENT, namespace, "parts.queue")
    assert container(worker)["command"] == ["arq", "app.worker.WorkerSettings"]
    assert container(worker)["image"] == TEST_IMAGE and worker["spec"]["replicas"] == 2
    assert container(worker)["livenessProbe"]["exec"]["command"] == ["arq", "--check", "app.worker.WorkerSettings"]
    assert "ports" not in container(worker), "a worker listens on nothing"
    worker_pod = worker["spec"]["template"]["spec"]
    assert worker_pod["terminationGracePeriodSeconds"] == 300
    assert [v["name"] for v in worker_pod["volumes"]] == ["shared", "settings"], "the volumes its containers mount"
    assert worker["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "parts",
                                                         "fastapi-operator.dev/worker": "queue"}
    assert "app.kubernetes.io/name" not in worker["spec"]["template"]["metadata"]["labels"], "the Service selects it"
    cron_job = cluster.get(CRON_JOB, namespace, "parts.nightly")
    assert cron_job["spec"]["schedule"] == "0 3 * * *" and cron_job["spec"]["timeZone"] == "Europe/Paris"
    assert cron_job["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 600
    assert container(cron_job)["command"] == ["python", "-m", "app.cleanup"]
    web = pod_of(cluster, namespace, "parts")
    assert init_names(web) == ["files"] and web["initContainers"][0]["restartPolicy"] == "Always"
    assert [v["name"] for v in web["volumes"]] == ["shared"]
    assert web["containers"][0]["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
    status = cluster.app(namespace, "parts")["status"]
    assert [worker["name"] for worker in status["workers"]] == ["queue"]
    assert status["schedules"][0]["name"] == "nightly" and status["schedules"][0]["suspended"] is False
    # Counts of ready pods differ between the tiers (KWOK's pods are ready at once; on kind the sidecar's
    # image here does not exist): the shape is what is checked.
    one_line = r"web \d+/1, worker queue \d+/2, schedule nightly"
    eventually(lambda: re.fullmatch(one_line, cluster.app(namespace, "parts")["status"].get("partsSummary", "")),
               timeout=60, message="the parts in one line")
    printed = cluster.kubectl("get", "fapp", "parts", "-n", namespace).stdout
    assert re.search(one_line, printed), printed

    # Changed: each of them.
    parts = manifest["spec"]
    parts["workers"][0].update(command=["arq", "app.other.Settings"], probe=None, replicas=None,
                               autoscaling={"minReplicas": 1, "maxReplicas": 4})
    parts["workers"][0] = {k: v for k, v in parts["workers"][0].items() if v is not None}
    parts["schedules"][0].update(schedule="*/5 * * * *", concurrencyPolicy="Replace")
    parts["sidecars"][0].update(image="files:2")
    parts["volumeMounts"] = [{"name": "shared", "mountPath": "/srv/shared", "readOnly": True}]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "parts", 3), timeout=60, message="the parts changed")
    worker = cluster.get(DEPLOYMENT, namespace, "parts.queue")
    assert container(worker)["command"] == ["arq", "app.other.Settings"]
    assert "livenessProbe" not in container(worker)
    autoscaler = cluster.get(AUTOSCALER, namespace, "parts.queue")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "parts.queue" and autoscaler["spec"]["maxReplicas"] == 4
    cron_job = cluster.get(CRON_JOB, namespace, "parts.nightly")
    assert cron_job["spec"]["schedule"] == "*/5 * * * *" and cron_job["spec"]["concurrencyPolicy"] == "Replace"
    web = pod_of(cluster, namespace, "parts")
    assert web["initContainers"][0]["image"] == "files:2"
    assert web["containers"][0]["volumeMounts"] == [{"name": "shared", "mountPath": "/srv/shared", "readOnly": True}]

    # Removed: all of them, and their children with them.
    for key in PARTS:
        del manifest["spec"][key]
    cluster.apply(manifest)
    eventually(lambda: reconciled_at(cluster, namespace, "parts", 4), timeout=60, message="the parts removed")
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "parts.queue") is None
               and cluster.get(CRON_JOB, namespace, "parts.nightly") is None
               and cluster.get(AUTOSCALER, namespace, "parts.queue") is None, timeout=30)
    web = pod_of(cluster, namespace, "parts")
    assert "initContainers" not in web and "volumes" not in web and "volumeMounts" not in web["containers"][0]
    eventually(lambda: "partsSummary" not in cluster.app(namespace, "parts")["status"], timeout=30)


def test_a_hand_edit_of_a_worker_is_reverted_and_a_hand_suspension_is_kept(cluster, namespace):
    cluster.apply(app_manifest("edited", namespace, workers=[WORKER], schedules=[SCHEDULE]))
    eventually(lambda: reconciled_at(cluster, namespace, "edited", 1), timeout=60)
    cluster.kubectl("patch", "deployment", "edited.queue", "-n", namespace, "--type=json", "-p",
                    '[{"op": "add", "path": "/spec/template/spec/containers/-", '
                    '"value": {"name": "miner", "image": "miner:1"}}]')
    eventually(lambda: [c["name"] for c in cluster.get(DEPLOYMENT, namespace, "edited.queue")["spec"]["template"]
                        ["spec"]["containers"]] == ["app"], timeout=30, message="the added container removed")
    # The Event comes at the end of the reconcile that reverted the edit, a moment after it.
    eventually(lambda: [e for e in events(cluster, namespace, "Reverted") if "edited.queue" in e["message"]],
               timeout=30, message="a Reverted Event")

    cluster.kubectl("patch", "cronjob", "edited.nightly", "-n", namespace, "-p", '{"spec": {"suspend": true}}')
    # A change the operator must act on, so a reconcile surely runs after the hand suspension.
    cluster.apply(app_manifest("edited", namespace, workers=[WORKER], schedules=[{**SCHEDULE, "schedule": "@daily"}]))
    eventually(lambda: reconciled_at(cluster, namespace, "edited", 2), timeout=60)
    cron_job = cluster.get(CRON_JOB, namespace, "edited.nightly")
    assert cron_job["spec"]["schedule"] == "@daily" and cron_job["spec"]["suspend"] is True
    eventually(lambda: "schedule nightly suspended" in cluster.app(namespace, "edited")["status"]["partsSummary"])


def test_the_migration_gate_holds_every_worker_and_schedule_and_suspends_the_schedules(cluster, namespace):
    with gated(cluster, namespace) as (selector, release, hold):
        release()
        manifest = app_manifest("gate", namespace, preStart=[MIGRATE], nodeSelector=selector,
                                workers=[WORKER], schedules=[SCHEDULE])
        cluster.apply(manifest)
        eventually(lambda: reconciled_at(cluster, namespace, "gate", 1), timeout=120)
        hold()

        # A new version, and a new worker and schedule with it: nothing of it starts before its migration.
        manifest["spec"].update(image=TEST_IMAGE_NEXT, workers=[WORKER, {**WORKER, "name": "mail"}],
                                schedules=[SCHEDULE, {**SCHEDULE, "name": "hourly", "schedule": "@hourly"}])
        cluster.apply(manifest)
        eventually(lambda: reason(cluster, namespace, "gate") == "MigrationRunning", timeout=60)
        eventually(lambda: cluster.get(CRON_JOB, namespace, "gate.nightly")["spec"].get("suspend") is True,
                   timeout=30, message="the schedule suspended while the migration runs")
        message = condition(cluster.app(namespace, "gate"), "Reconciled")["message"]
        assert "Deployment gate.queue" in message and "CronJob gate.nightly" in message, message
        assert container(cluster.get(DEPLOYMENT, namespace, "gate.queue"))["image"] == TEST_IMAGE
        assert container(cluster.get(CRON_JOB, namespace, "gate.nightly"))["image"] == TEST_IMAGE
        assert cluster.get(DEPLOYMENT, namespace, "gate.mail") is None
        assert cluster.get(CRON_JOB, namespace, "gate.hourly") is None
        eventually(lambda: [e for e in events(cluster, namespace, "Suspended") if "gate.nightly" in e["message"]],
                   timeout=30, message="a Suspended Event")

        release()
        eventually(lambda: reconciled_at(cluster, namespace, "gate", 2), timeout=120, message="migrated and rolled")
        for name in ("gate.queue", "gate.mail"):
            assert container(cluster.get(DEPLOYMENT, namespace, name))["image"] == TEST_IMAGE_NEXT
        for name in ("gate.nightly", "gate.hourly"):
            cron_job = cluster.get(CRON_JOB, namespace, name)
            assert container(cron_job)["image"] == TEST_IMAGE_NEXT and not cron_job["spec"].get("suspend")
        eventually(lambda: [e for e in events(cluster, namespace, "Resumed") if "gate.nightly" in e["message"]],
                   timeout=30, message="a Resumed Event")

    # A migration that fails (its pod can never start, past a short deadline): the workers and the
    # schedule keep the version that runs, and the schedule is not left suspended.
    manifest["spec"].update(image=TEST_IMAGE, nodeSelector=NOWHERE, migrationDeadlineSeconds=10)
    cluster.apply(manifest)
    eventually(lambda: reason(cluster, namespace, "gate") == "MigrationFailed", timeout=120)
    assert len(jobs_of(cluster, namespace, "gate")) >= 2
    eventually(lambda: not cluster.get(CRON_JOB, namespace, "gate.nightly")["spec"].get("suspend"), timeout=30,
               message="the old version's schedule runs again, as its web pods serve")
    for name in ("gate.queue", "gate.mail"):
        assert container(cluster.get(DEPLOYMENT, namespace, name))["image"] == TEST_IMAGE_NEXT
    assert container(cluster.get(CRON_JOB, namespace, "gate.nightly"))["image"] == TEST_IMAGE_NEXT
    assert "wait with it" in condition(cluster.app(namespace, "gate"), "Reconciled")["message"]


def test_ready_covers_every_worker(cluster, namespace):
    cluster.apply(app_manifest("ready", namespace, workers=[WORKER]))
    eventually(lambda: condition(cluster.app(namespace, "ready"), "Ready").get("status") == "True", timeout=60)
    # A worker whose pods no node can take: the web pods serve, and the app is not Ready, naming the worker.
    unschedulable = {**WORKER, "resources": {"requests": {"cpu": "1000"}}}
    cluster.apply(app_manifest("ready", namespace, workers=[unschedulable]))
    eventually(lambda: condition(cluster.app(namespace, "ready"), "Ready").get("status") == "False", timeout=60)
    assert "worker queue" in condition(cluster.app(namespace, "ready"), "Available")["message"]
    assert condition(cluster.app(namespace, "ready"), "Reconciled")["status"] == "True"
