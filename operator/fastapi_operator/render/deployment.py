"""The Deployment: one `fastapi run` process per container, replicated by Kubernetes."""

from __future__ import annotations

from typing import Any

from ..api import EVERY_POD, FastAPIApp
from ..meta import child_labels, selector_labels
from .common import PORT_NAME, child_metadata
from .monitor import metrics_container_port
from .plan import Plan
from .pod import base_pod_spec, container_security_context, pod_metadata, step_container
from .volumes import mounts, with_sidecars_and_volumes

APP_CONTAINER = "app"
# Replicas spread over nodes, then zones: soft, so a one-node cluster (or nodes without zone
# labels) still schedules every pod.
SPREAD_TOPOLOGY_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")


KEEP_ALIVE_VARIABLE = "UVICORN_TIMEOUT_KEEP_ALIVE"
# `fastapi run` (fastapi-cli 0.0.34) has no keep-alive option and uvicorn reads no environment when
# it is called as a library: this runs the same CLI in the same process, with uvicorn's
# timeout_keep_alive taken from the variable (the one a custom command's uvicorn reads too).
KEEP_ALIVE_LAUNCHER = (
    "import functools, os, uvicorn; "
    f"uvicorn.run = functools.partial(uvicorn.run, timeout_keep_alive=int(os.environ['{KEEP_ALIVE_VARIABLE}'])); "
    "from fastapi_cli.cli import main; main()"
)


def fastapi_run_command(app: FastAPIApp, plan: Plan) -> list[str]:
    """`fastapi run` in exec form, so SIGTERM reaches uvicorn; never --workers. It has no graceful
    shutdown timeout option (fastapi-cli 0.0.34): uvicorn finishes the requests in flight until
    the kubelet kills it at the end of terminationGracePeriodSeconds. With a keep-alive to set,
    the same CLI through the launcher above."""
    spec = app.spec
    target = ["--entrypoint", spec.app] if ":" in spec.app else [spec.app]
    cli = ["python3", "-c", KEEP_ALIVE_LAUNCHER] if plan.keep_alive_seconds else ["fastapi"]
    command = [*cli, "run", *target, "--host", "0.0.0.0", "--port", str(spec.port)]
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
        "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": str(app.spec.shutdown.timeout_seconds),
    }
    if plan.keep_alive_seconds:
        env[KEEP_ALIVE_VARIABLE] = str(plan.keep_alive_seconds)
    if plan.root_path:
        env["UVICORN_ROOT_PATH"] = plan.root_path
        env["ROOT_PATH"] = plan.root_path
    return without_users(app, env)


def without_users(app: FastAPIApp, env: dict[str, str]) -> list[dict[str, str]]:
    """A variable the user sets wins, and appears once: two entries of one name are refused."""
    own = {variable.name for variable in app.spec.env}
    return [{"name": name, "value": value} for name, value in env.items() if name not in own]


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


def graceful_stop(app: FastAPIApp) -> dict[str, Any]:
    """The app container's part of spec.shutdown: a stopping pod keeps serving for drainSeconds,
    because the ingress controller sends it requests until its endpoints update (about a second
    for Traefik) while uvicorn stops accepting connections at SIGTERM. The pause is a sleep
    action, so it needs no binary in the image. Measured on the kind tier: 4 of 223 requests
    failed during a rollout without it."""
    drain = app.spec.shutdown.drain_seconds
    return {"lifecycle": {"preStop": {"sleep": {"seconds": drain}}}} if drain else {}


def spread_constraints(app: FastAPIApp) -> list[dict[str, Any]]:
    return [{
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector_labels(app.name)},
        # Spread each ReplicaSet on its own: mid-rollout, old pods do not skew where new ones go.
        "matchLabelKeys": ["pod-template-hash"],
    } for key in SPREAD_TOPOLOGY_KEYS]


def render_deployment(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    spec = app.spec
    user_env = [variable.wire() for variable in spec.env]
    user_env_from = [source.wire() for source in spec.env_from]

    app_container: dict[str, Any] = {
        "name": APP_CONTAINER,
        "image": spec.image,
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"},
                  *filter(None, [metrics_container_port(app)])],
        "resources": spec.resources.wire(),
        "securityContext": container_security_context(spec.port),
        **probes(spec.health_path),
        **graceful_stop(app),
        **mounts(spec.volume_mounts),
    }
    if spec.command:
        app_container["command"] = list(spec.command)
        app_container["env"] = server_environment(app, plan) + user_env
    else:
        app_container["command"] = fastapi_run_command(app, plan)
        keep_alive = {KEEP_ALIVE_VARIABLE: str(plan.keep_alive_seconds)} if plan.keep_alive_seconds else {}
        if keep_alive or user_env:
            app_container["env"] = without_users(app, keep_alive) + user_env
    if user_env_from:
        app_container["envFrom"] = user_env_from

    pod_spec: dict[str, Any] = {
        **base_pod_spec(app),
        "terminationGracePeriodSeconds": spec.shutdown.grace_period_seconds,
        "topologySpreadConstraints": spread_constraints(app),
        "containers": [app_container],
    }
    steps = [step_container(app, step) for step in spec.pre_start if step.run == EVERY_POD]
    pod_spec = with_sidecars_and_volumes(app, {**pod_spec, **({"initContainers": steps} if steps else {})})

    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(app.name)},
        # A new pod must be Ready before an old one goes: updates cause no downtime.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "template": {"metadata": pod_metadata(app, child_labels(app.name)), "spec": pod_spec},
    }
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(app),
        "spec": deployment_spec,
    }
