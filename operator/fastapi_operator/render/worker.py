"""The app's processes beside the web server: a background worker is a Deployment, a scheduled
task a CronJob. Both run the app's image, environment and pod settings unless they set their own,
with the same security context, sidecars and EveryPod steps as the web pods; neither has a port,
a Service, an ingress or trust in forwarded headers. The reconciler holds both with the web
Deployment while a migration holds the rollout (reconcile/workloads.py)."""

from __future__ import annotations

from typing import Any

from ..api import EVERY_POD, EnvFromSource, EnvVar, FastAPIApp, ResourceRequirements, Schedule, Worker
from ..errors import InvalidSpec
from ..meta import (
    LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_SCHEDULE, LABEL_WORKER, OPERATOR_NAME, child_labels,
)
from .autoscaler import autoscaler_spec
from .common import child_metadata
from .pod import base_pod_spec, container_security_context, pod_metadata, step_container
from .volumes import mounts, probe, with_sidecars_and_volumes

WORKER_COMPONENT = "worker"
SCHEDULE_COMPONENT = "schedule"
PROCESS_CONTAINER = "app"  # a sidecar may not be called so (api.py), and `kubectl logs` picks it
CRON_JOB_NAME_LIMIT = 52  # the Jobs it makes add 11 characters, and a Job's name is a label value


def part_name(app_name: str, part: str) -> str:
    """<app>.<part>: an app's name has no dot, so no other app's child can have this name."""
    return f"{app_name}.{part}"


def worker_labels(app_name: str, worker: str) -> dict[str, str]:
    """Not the web pods' selector (instance and name): the app's Service never selects a worker."""
    return {LABEL_INSTANCE: app_name, LABEL_WORKER: worker}


def worker_selector(app_name: str) -> str:
    """Every worker Deployment of the app, to find the ones the spec no longer has."""
    return f"{LABEL_INSTANCE}={app_name},{LABEL_COMPONENT}={WORKER_COMPONENT},{LABEL_MANAGED_BY}={OPERATOR_NAME}"


def schedule_selector(app_name: str) -> str:
    return f"{LABEL_INSTANCE}={app_name},{LABEL_COMPONENT}={SCHEDULE_COMPONENT},{LABEL_MANAGED_BY}={OPERATOR_NAME}"


def _metadata(app: FastAPIApp, name: str, labels: dict[str, str]) -> dict[str, Any]:
    metadata = child_metadata(app, name)
    metadata["labels"] = {**child_labels(app.name), **labels}
    return metadata


def process_container(app: FastAPIApp, part: Worker | Schedule) -> dict[str, Any]:
    spec = app.spec
    env: list[EnvVar] = spec.env if part.env is None else part.env
    env_from: list[EnvFromSource] = spec.env_from if part.env_from is None else part.env_from
    resources: ResourceRequirements = part.resources or spec.resources
    container: dict[str, Any] = {
        "name": PROCESS_CONTAINER,
        "image": part.image or spec.image,
        "command": list(part.command),
        "resources": resources.wire(),
        "securityContext": container_security_context(),
        **mounts(part.volume_mounts),
    }
    if env:
        container["env"] = [variable.wire() for variable in env]
    if env_from:
        container["envFrom"] = [source.wire() for source in env_from]
    return container


def process_pod_spec(app: FastAPIApp, container: dict[str, Any], **settings: Any) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {**base_pod_spec(app), **settings, "containers": [container]}
    steps = [step_container(app, step) for step in app.spec.pre_start if step.run == EVERY_POD]
    if steps:
        pod_spec["initContainers"] = steps
    return with_sidecars_and_volumes(app, pod_spec)


def render_worker(app: FastAPIApp, worker: Worker) -> dict[str, Any]:
    labels = worker_labels(app.name, worker.name)
    container = process_container(app, worker)
    if worker.probe is not None:
        container["livenessProbe"] = probe(worker.probe)
    pod_spec = process_pod_spec(app, container, terminationGracePeriodSeconds=worker.termination_grace_period_seconds)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": pod_metadata(app, {**labels, LABEL_COMPONENT: WORKER_COMPONENT,
                                                    LABEL_MANAGED_BY: OPERATOR_NAME}),
                     "spec": pod_spec},
    }
    if worker.autoscaling is None:
        spec["replicas"] = 1 if worker.replicas is None else worker.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(app, part_name(app.name, worker.name), {LABEL_COMPONENT: WORKER_COMPONENT,
                                                                        LABEL_WORKER: worker.name}),
        "spec": spec,
    }


def render_worker_autoscaler(app: FastAPIApp, worker: Worker) -> dict[str, Any] | None:
    if worker.autoscaling is None:
        return None
    name = part_name(app.name, worker.name)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(app, name, {LABEL_COMPONENT: WORKER_COMPONENT, LABEL_WORKER: worker.name}),
        "spec": autoscaler_spec(name, worker.autoscaling),
    }


def render_schedule(app: FastAPIApp, schedule: Schedule) -> dict[str, Any]:
    """No spec.suspend: that is the migration gate's (reconcile/workloads.py), and a user's."""
    name = part_name(app.name, schedule.name)
    if len(name) > CRON_JOB_NAME_LIMIT:
        raise InvalidSpec(f"spec.schedules[{schedule.name}]: its CronJob {name} would be {len(name)} characters, "
                          f"and Kubernetes allows {CRON_JOB_NAME_LIMIT}: shorten the schedule's or the app's name")
    labels = {LABEL_INSTANCE: app.name, LABEL_COMPONENT: SCHEDULE_COMPONENT, LABEL_SCHEDULE: schedule.name,
              LABEL_MANAGED_BY: OPERATOR_NAME}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,  # a failed run waits for the next one, as cron does
        "template": {"metadata": pod_metadata(app, labels),
                     "spec": process_pod_spec(app, process_container(app, schedule), restartPolicy="Never")},
    }
    if schedule.deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = schedule.deadline_seconds
    spec: dict[str, Any] = {
        "schedule": schedule.schedule,
        "concurrencyPolicy": schedule.concurrency_policy,
        "successfulJobsHistoryLimit": schedule.successful_jobs_history_limit,
        "failedJobsHistoryLimit": schedule.failed_jobs_history_limit,
        "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
    }
    if schedule.time_zone:
        spec["timeZone"] = schedule.time_zone
    if schedule.starting_deadline_seconds is not None:
        spec["startingDeadlineSeconds"] = schedule.starting_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(app, name, {LABEL_COMPONENT: SCHEDULE_COMPONENT, LABEL_SCHEDULE: schedule.name}),
        "spec": spec,
    }


def render_workloads(app: FastAPIApp) -> list[dict[str, Any]]:
    """The workers' Deployments (and autoscalers) and the schedules' CronJobs, in spec order."""
    rendered: list[dict[str, Any]] = []
    for worker in app.spec.workers:
        rendered.append(render_worker(app, worker))
        autoscaler = render_worker_autoscaler(app, worker)
        if autoscaler is not None:
            rendered.append(autoscaler)
    rendered += [render_schedule(app, schedule) for schedule in app.spec.schedules]
    return rendered
