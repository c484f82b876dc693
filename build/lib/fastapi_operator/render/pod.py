"""What every pod of an app shares, whether a Deployment or a migration Job runs it: the restricted
security context, the user's pod settings (registry credentials, ServiceAccount, placement,
labels and annotations) and the containers of its pre-start steps."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp, PreStartStep
from ..meta import DEFAULT_RUN_AS_USER

PRIVILEGED_PORT_LIMIT = 1024
DEFAULT_SERVICE_ACCOUNT = "default"


def container_security_context(port: int | None = None) -> dict[str, Any]:
    capabilities: dict[str, list[str]] = {"drop": ["ALL"]}
    if port is not None and port < PRIVILEGED_PORT_LIMIT:
        capabilities["add"] = ["NET_BIND_SERVICE"]
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": DEFAULT_RUN_AS_USER,
        "runAsGroup": DEFAULT_RUN_AS_USER,
        "fsGroup": DEFAULT_RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_metadata(app: FastAPIApp, labels: dict[str, str]) -> dict[str, Any]:
    """The user's pod labels and annotations; `labels` (the operator's) always win, and the API
    schema already refuses the reserved keys."""
    metadata: dict[str, Any] = {"labels": {**app.spec.pod_labels, **labels}}
    if app.spec.pod_annotations:
        metadata["annotations"] = dict(app.spec.pod_annotations)
    return metadata


def base_pod_spec(app: FastAPIApp) -> dict[str, Any]:
    spec = app.spec
    pod_spec: dict[str, Any] = {
        # Service links would inject e.g. UVICORN_PORT=tcp://... for a Service named uvicorn.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
    }
    # Always set: the API server copies the deprecated serviceAccount back into an absent
    # serviceAccountName, so leaving it out would never remove a ServiceAccount the spec dropped.
    pod_spec["serviceAccountName"] = spec.service_account_name or DEFAULT_SERVICE_ACCOUNT
    if not spec.service_account_name:
        # The app talks to its users, not to the Kubernetes API. With the user's own
        # ServiceAccount (workload identity), its automountServiceAccountToken decides.
        pod_spec["automountServiceAccountToken"] = False
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [secret.wire() for secret in spec.image_pull_secrets]
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [toleration.wire() for toleration in spec.tolerations]
    if spec.affinity is not None:
        pod_spec["affinity"] = spec.affinity.wire()
    return pod_spec


def step_container(app: FastAPIApp, step: PreStartStep) -> dict[str, Any]:
    """A pre-start step as a container: the app's image, environment and resources unless the step
    sets its own."""
    spec = app.spec
    env = [v.wire() for v in (spec.env if step.env is None else step.env)]
    env_from = [s.wire() for s in (spec.env_from if step.env_from is None else step.env_from)]
    container: dict[str, Any] = {
        "name": step.name,
        "image": step.image or spec.image,
        "command": list(step.command),
        "resources": spec.resources.wire(),
        "securityContext": container_security_context(),
    }
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    return container
