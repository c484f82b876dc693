"""The Deployment: one `fastapi run` process per container, replicated by Kubernetes."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import DEFAULT_RUN_AS_USER, child_labels, selector_labels
from .common import child_metadata
from .plan import Plan

APP_CONTAINER = "app"
PORT_NAME = "http"
PRIVILEGED_PORT_LIMIT = 1024
# A stopping pod keeps serving this long before it gets SIGTERM: the ingress controller sends
# it requests until its endpoints update (about a second for Traefik), and uvicorn stops
# accepting connections at SIGTERM. The pause needs no binary in the image (a sleep action).
# Measured on the kind tier: 4 of 223 requests failed during a rollout without it.
PRE_STOP_PAUSE_SECONDS = 5


def fastapi_run_command(app: FastAPIApp, plan: Plan) -> list[str]:
    """`fastapi run` in exec form, so SIGTERM reaches uvicorn; never --workers."""
    spec = app.spec
    target = ["--entrypoint", spec.app] if ":" in spec.app else [spec.app]
    command = ["fastapi", "run", *target, "--host", "0.0.0.0", "--port", str(spec.port)]
    command += ["--proxy-headers", "--forwarded-allow-ips", plan.forwarded_allow_ips]
    if plan.root_path:
        command += ["--root-path", plan.root_path]
    return command


def server_environment(app: FastAPIApp, plan: Plan) -> list[dict[str, str]]:
    """The same settings as fastapi_run_command, for a custom command: uvicorn reads
    UVICORN_<OPTION> and FORWARDED_ALLOW_IPS from its environment."""
    env = {
        "UVICORN_HOST": "0.0.0.0",
        "UVICORN_PORT": str(app.spec.port),
        "UVICORN_PROXY_HEADERS": "true",
        "UVICORN_FORWARDED_ALLOW_IPS": plan.forwarded_allow_ips,
        "FORWARDED_ALLOW_IPS": plan.forwarded_allow_ips,
    }
    if plan.root_path:
        env["UVICORN_ROOT_PATH"] = plan.root_path
        env["ROOT_PATH"] = plan.root_path
    return [{"name": name, "value": value} for name, value in env.items()]


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


def probes(health_path: str | None) -> dict[str, Any]:
    check: dict[str, Any]
    if health_path:
        check = {"httpGet": {"path": health_path, "port": PORT_NAME}}
    else:
        check = {"tcpSocket": {"port": PORT_NAME}}
    return {
        # Up to 60 s to import the app and run its lifespan startup before liveness counts.
        "startupProbe": {**check, "periodSeconds": 2, "failureThreshold": 30},
        "readinessProbe": {**check, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**check, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 3},
    }


def render_deployment(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    spec = app.spec
    user_env = [variable.wire() for variable in spec.env]
    user_env_from = [source.wire() for source in spec.env_from]
    resources = spec.resources.wire()

    app_container: dict[str, Any] = {
        "name": APP_CONTAINER,
        "image": spec.image,
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "resources": resources,
        "securityContext": container_security_context(spec.port),
        **probes(spec.health_path),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_PAUSE_SECONDS}}},
    }
    if spec.command:
        app_container["command"] = list(spec.command)
        # The operator's settings first, so a user's own variable of the same name wins.
        app_container["env"] = server_environment(app, plan) + user_env
    else:
        app_container["command"] = fastapi_run_command(app, plan)
        if user_env:
            app_container["env"] = user_env
    if user_env_from:
        app_container["envFrom"] = user_env_from

    init_containers = []
    for step in spec.pre_start:
        step_env = user_env if step.env is None else [v.wire() for v in step.env]
        step_env_from = user_env_from if step.env_from is None else [s.wire() for s in step.env_from]
        init_container: dict[str, Any] = {
            "name": step.name,
            "image": step.image or spec.image,
            "command": list(step.command),
            "resources": resources,
            "securityContext": container_security_context(),
        }
        if step_env:
            init_container["env"] = step_env
        if step_env_from:
            init_container["envFrom"] = step_env_from
        init_containers.append(init_container)

    pod_spec: dict[str, Any] = {
        # The app talks to its users, not to the Kubernetes API.
        "automountServiceAccountToken": False,
        # Service links would inject e.g. UVICORN_PORT=tcp://... for a Service named uvicorn.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [app_container],
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers

    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(app.name)},
        # A new pod must be Ready before an old one goes: updates cause no downtime.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "template": {"metadata": {"labels": child_labels(app.name)}, "spec": pod_spec},
    }
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(app),
        "spec": deployment_spec,
    }
