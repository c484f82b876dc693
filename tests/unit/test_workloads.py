"""Workers, schedules, volumes and sidecars: what they render, and the pure decision that holds them
behind the migration gate (reconcile/workloads.py)."""

from __future__ import annotations

import copy

import pytest

from fastapi_operator.api import FastAPIApp
from fastapi_operator.errors import InvalidSpec, MigrationFailed, MigrationRunning
from fastapi_operator.kinds import CRON_JOB, DEPLOYMENT
from fastapi_operator.meta import MIGRATION_GATE_FIELD_MANAGER, selector_labels
from fastapi_operator.reconcile.migrations import Gate
from fastapi_operator.reconcile.workloads import decide_workloads, suspension
from fastapi_operator.render import render_app
from fastapi_operator.render.worker import render_workloads
from fastapi_operator.settings import Settings
from tests.manifests import PARTS, app_manifest
from tests.unit.test_rollout_unit import live_copy


def app(**spec) -> FastAPIApp:
    manifest = app_manifest("shop", "team", **spec)
    manifest["metadata"]["uid"] = "uid-1"
    return FastAPIApp.model_validate(manifest)


def rendered(**spec) -> dict[str, dict]:
    result = render_app(app(**copy.deepcopy(PARTS), **spec), Settings(), {})
    return {f"{m['kind']} {m['metadata']['name']}": m for m in result.every_manifest}


def pods(manifests: dict[str, dict]) -> list[dict]:
    found = []
    for manifest in manifests.values():
        spec = manifest.get("spec") or {}
        template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template")
        if template:
            found.append(template)
    return found


def test_each_part_is_its_own_child_named_after_the_app_with_a_dot():
    names = set(rendered())
    assert {"Deployment shop", "Deployment shop.queue", "CronJob shop.nightly"} <= names


def test_no_worker_or_schedule_pod_carries_the_web_pods_selector():
    web_selector = selector_labels("shop").items()
    for template in pods(rendered()):
        labels = template["metadata"]["labels"]
        is_web = labels.get("app.kubernetes.io/name") == "shop"
        assert is_web == (web_selector <= labels.items())
    worker = rendered()["Deployment shop.queue"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= worker["spec"]["template"]["metadata"]["labels"].items()


def test_every_container_of_every_pod_meets_pod_security_restricted():
    checked = 0
    for template in pods(rendered()):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        volume_types = {key for volume in pod.get("volumes", []) for key in volume if key != "name"}
        assert volume_types <= {"emptyDir", "configMap", "secret", "persistentVolumeClaim", "ephemeral"}
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            assert context["runAsNonRoot"] is True and context["seccompProfile"] == {"type": "RuntimeDefault"}
            checked += 1
    assert checked >= 6  # web, worker, schedule: each with the sidecar


def test_sidecars_come_first_and_are_native_and_each_pod_gets_only_the_volumes_it_mounts():
    manifests = rendered(preStart=[{"name": "wait", "command": ["wait-for", "db"]}])
    web = manifests["Deployment shop"]["spec"]["template"]["spec"]
    assert [c["name"] for c in web["initContainers"]] == ["files", "wait"]
    assert web["initContainers"][0]["restartPolicy"] == "Always"
    assert web["initContainers"][0]["startupProbe"]["tcpSocket"] == {"port": 9000}
    assert [v["name"] for v in web["volumes"]] == ["shared"]
    worker = manifests["Deployment shop.queue"]["spec"]["template"]["spec"]
    assert [v["name"] for v in worker["volumes"]] == ["shared", "settings"]
    assert worker["containers"][0]["volumeMounts"] == [{"name": "settings", "mountPath": "/etc/hello", "readOnly": True}]
    assert [c["name"] for c in worker["initContainers"]] == ["files", "wait"], "EveryPod steps run in every pod"


def test_a_worker_takes_the_apps_image_env_and_resources_unless_it_sets_its_own():
    spec = copy.deepcopy(PARTS)
    spec["workers"].append({"name": "mail", "command": ["celery", "worker"], "image": "mail:2",
                            "env": [{"name": "QUEUE", "value": "mail"}], "resources": {"limits": {"memory": "1Gi"}}})
    result = {m["metadata"]["name"]: m for m in render_workloads(app(env=[{"name": "DB", "value": "x"}], **spec))}
    queue = result["shop.queue"]["spec"]["template"]["spec"]["containers"][0]
    mail = result["shop.mail"]["spec"]["template"]["spec"]["containers"][0]
    assert queue["env"] == [{"name": "DB", "value": "x"}] and queue["resources"]["limits"] == {"memory": "256Mi"}
    assert mail["env"] == [{"name": "QUEUE", "value": "mail"}] and mail["resources"] == {"limits": {"memory": "1Gi"}}
    assert mail["image"] == "mail:2" and queue["image"] == app().spec.image


def test_a_schedule_whose_cron_job_name_kubernetes_would_refuse_is_an_invalid_spec_naming_it():
    long_name = {"name": "a" * 50, "schedule": "@daily", "command": ["x"]}
    with pytest.raises(InvalidSpec, match=r"spec.schedules\[a+\].*52"):
        render_workloads(app(schedules=[long_name]))


def test_the_gate_holds_a_changed_or_new_worker_and_schedule_and_writes_them_once_open():
    before = {(kind_of(m), m["metadata"]["name"]): live_copy(m) for m in render_workloads(app(**PARTS))}
    newer = render_workloads(app(**{**PARTS, "image": "registry.example.com/shop:2"}))
    running = Gate(MigrationRunning("Job x runs"))
    held = decide_workloads(newer, before, running)
    assert {m["metadata"]["name"] for m in held.held} == {"shop.queue", "shop.nightly"} and not held.write
    assert "Deployment shop.queue" in held.waiting() and "CronJob shop.nightly" in held.waiting()
    opened = decide_workloads(newer, before, Gate(None))
    assert {m["metadata"]["name"] for m in opened.write} == {"shop.queue", "shop.nightly"} and not opened.held
    assert not decide_workloads(render_workloads(app(**PARTS)), before, running).held, "unchanged: nothing waits"
    assert decide_workloads([], before, running).delete == sorted(before, key=lambda k: (k[0].kind, k[1]))


def kind_of(manifest):
    return {"Deployment": DEPLOYMENT, "CronJob": CRON_JOB}[manifest["kind"]]


def gate_owned(cron_job: dict, suspend: bool) -> dict:
    owned = copy.deepcopy(cron_job)
    owned["spec"]["suspend"] = suspend
    owned["metadata"]["managedFields"] = owned["metadata"].get("managedFields", []) + [
        {"manager": MIGRATION_GATE_FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:suspend": {}}}}]
    return owned


def test_schedules_are_suspended_while_a_migration_runs_and_only_the_gates_suspension_is_lifted():
    cron_job = next(m for m in render_workloads(app(**PARTS)) if m["kind"] == "CronJob")
    assert suspension(cron_job, migration_running=True) is True
    assert suspension(gate_owned(cron_job, True), migration_running=True) is None
    assert suspension(gate_owned(cron_job, True), migration_running=False) is False
    by_hand = {**cron_job, "spec": {**cron_job["spec"], "suspend": True}}
    assert suspension(by_hand, migration_running=False) is None, "a user's suspension stays"
    assert suspension(cron_job, migration_running=False) is None
    # A failed migration runs nothing: the old version's schedule runs on, as its web pods serve.
    live = {(CRON_JOB, cron_job["metadata"]["name"]): gate_owned(live_copy(cron_job), True)}
    failed = decide_workloads([cron_job], live, Gate(MigrationFailed("failed")))
    assert [suspend for _, suspend in failed.suspend] == [False]


def test_the_migration_job_runs_the_sidecars_beside_its_steps_and_names_only_the_steps():
    from fastapi_operator.reconcile.migrations import step_names
    migrate = {"name": "migrate", "command": ["alembic", "upgrade", "head"], "run": "OncePerRollout"}
    job = render_app(app(**copy.deepcopy(PARTS), preStart=[migrate]), Settings(), {}).migration
    assert [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]] == ["files"]
    assert step_names(job) == ["migrate"]
