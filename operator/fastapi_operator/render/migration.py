"""The migration Job: the pre-start steps marked OncePerRollout, run once, in one pod, before
the Deployment's pods change (FastAPI's deployment guide: previous steps run once, in a single
process, before the app starts). The reconciler holds the Deployment until the Job succeeds."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api import ONCE_PER_ROLLOUT, FastAPIApp, PreStartStep
from ..meta import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, OPERATOR_NAME, child_labels
from .common import child_metadata
from .pod import base_pod_spec, pod_metadata, step_container
from .volumes import with_sidecars_and_volumes

MIGRATION_COMPONENT = "migration"
# Finished Jobs kept for their logs, the current one included.
KEPT_MIGRATION_JOBS = 3
NAME_LIMIT = 63  # a Job's name is also the value of its pods' job-name label
# Pods that failed without a step reporting failure (the kubelet refused them, the runtime could
# not start a container: exit code 128, a signal: 128 + n) may be replaced, this many times.
INFRASTRUCTURE_RETRIES = 3
# What a program exits with when it fails by itself; 128 and above are the runtime's and signals'.
STEP_FAILURE_EXIT_CODES = list(range(1, 128))


def once_per_rollout_steps(app: FastAPIApp) -> list[PreStartStep]:
    return [step for step in app.spec.pre_start if step.run == ONCE_PER_ROLLOUT]


def migration_labels(app_name: str) -> dict[str, str]:
    """The Job's pods must not carry the app's selector labels: the Service would send them
    requests and the PodDisruptionBudget would count them."""
    return {LABEL_INSTANCE: app_name, LABEL_COMPONENT: MIGRATION_COMPONENT, LABEL_MANAGED_BY: OPERATOR_NAME}


def migration_selector(app_name: str) -> str:
    return ",".join(f"{key}={value}" for key, value in migration_labels(app_name).items())


def migration_job_name(app_name: str, steps: list[PreStartStep], pod_template: dict[str, Any]) -> str:
    """Named after what it runs: the app, the first step, and a digest of the Job's pod (images,
    commands, environments, and where and as whom it runs). The same migration keeps its name,
    so it runs once; any change gets a new name, so it runs again, and a Job that could never
    start (a wrong pull secret or node selector) is replaced by a corrected spec."""
    digest = hashlib.sha256(json.dumps(pod_template, sort_keys=True).encode()).hexdigest()[:10]
    head = f"{app_name}-{steps[0].name}"[: NAME_LIMIT - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def render_migration_job(app: FastAPIApp) -> dict[str, Any] | None:
    steps = once_per_rollout_steps(app)
    if not steps:
        return None
    containers = [step_container(app, step) for step in steps]
    pod_spec: dict[str, Any] = {
        **base_pod_spec(app),
        "restartPolicy": "Never",
        # Steps run in order: all but the last as init containers, which stop at the first failure.
        "containers": containers[-1:],
    }
    if containers[:-1]:
        pod_spec["initContainers"] = containers[:-1]
    pod_spec = with_sidecars_and_volumes(app, pod_spec)  # a database proxy, say
    template = {"metadata": pod_metadata(app, migration_labels(app.name)), "spec": pod_spec}
    metadata = child_metadata(app, migration_job_name(app.name, steps, template))
    metadata["labels"] = {**child_labels(app.name), **migration_labels(app.name)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            # A step that exits with a failure (1-127) is not retried blindly: the Job fails at once,
            # and a changed spec starts a new one (deleting the failed Job runs the same one again).
            # A pod lost before its steps could finish (evicted, preempted, its node drained, refused
            # by the kubelet, a container the runtime could not start) is retried.
            "backoffLimit": INFRASTRUCTURE_RETRIES,
            # A migration that cannot start (an image that cannot be pulled, a quota) or never
            # ends fails, and says so, instead of holding the rollout forever. Not part of the
            # pod, so not of the Job's name: changing it alone starts no migration.
            "activeDeadlineSeconds": app.spec.migration_deadline_seconds,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": STEP_FAILURE_EXIT_CODES}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]},
            "template": template,
        },
    }
