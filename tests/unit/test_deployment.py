"""The Deployment follows FastAPI's deployment guide and Pod Security "restricted"."""

from __future__ import annotations

import re

from fastapi_operator.meta import service_port_name
from tests.manifests import TEST_IMAGE
from tests.unit.conftest import one

INGRESS = {"hosts": ["hello.example.com"], "path": "/api"}
TLS = {"acme": {"email": "ops@example.com"}}


def app_container(rendered):
    return one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_one_fastapi_run_process_with_proxy_headers_and_no_workers(render):
    command = app_container(render(ingress=INGRESS, tls={"enabled": False}))["command"]
    assert command[:2] == ["python3", "-c"] and "from fastapi_cli.cli import main; main()" in command[2]
    assert command[3:5] == ["run", "app/main.py"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert "--proxy-headers" in command
    assert command[command.index("--forwarded-allow-ips") + 1] == "*"
    assert not any(part.startswith("--workers") for part in command)


def test_keep_alive_outlasts_the_proxys_idle_connections_and_the_spec_or_the_user_wins(render):
    def keep_alive(**spec):
        container = app_container(render(**spec))
        values = [v["value"] for v in container.get("env", []) if v["name"] == "UVICORN_TIMEOUT_KEEP_ALIVE"]
        return values, container["command"][0]

    traefik = {**INGRESS, "className": "traefik"}
    assert keep_alive(ingress=traefik, tls=TLS) == (["95"], "python3")  # Traefik keeps idle ones 90 s
    assert keep_alive(ingress={**INGRESS, "className": "nginx"}, tls=TLS) == (["65"], "python3")
    assert keep_alive(ingress=traefik, tls=TLS, keepAliveSeconds=200) == (["200"], "python3")
    assert keep_alive(ingress=traefik, tls=TLS, command=["uvicorn", "app.main:app"])[0] == ["95"]
    assert keep_alive(ingress=traefik, tls=TLS, command=["uvicorn", "app.main:app"],
                      env=[{"name": "UVICORN_TIMEOUT_KEEP_ALIVE", "value": "7"}])[0] == ["7"]
    assert keep_alive(ingress=traefik, tls=TLS, env=[{"name": "UVICORN_TIMEOUT_KEEP_ALIVE", "value": "7"}])[0] == ["7"]
    assert keep_alive() == ([], "fastapi"), "no proxy: uvicorn's own, and the plain command"


def test_prefix_is_passed_as_root_path(render):
    command = app_container(render(ingress=INGRESS, tls=TLS))["command"]
    assert command[command.index("--root-path") + 1] == "/api"


def test_no_root_path_at_the_root(render):
    command = app_container(render(ingress={"hosts": ["hello.example.com"]}, tls=TLS))["command"]
    assert "--root-path" not in command


def test_without_ingress_only_localhost_is_trusted_for_forwarded_headers(render):
    command = app_container(render())["command"]
    assert command[command.index("--forwarded-allow-ips") + 1] == "127.0.0.1"


def test_import_string_is_passed_as_entrypoint(render):
    command = app_container(render(app="app.main:app"))["command"]
    assert command[2:4] == ["--entrypoint", "app.main:app"]


def test_custom_command_gets_proxy_and_root_path_through_the_environment(render):
    container = app_container(render(command=["uvicorn", "app.main:app"], ingress=INGRESS, tls=TLS,
                                     env=[{"name": "UVICORN_HOST", "value": "::"}]))
    assert container["command"] == ["uvicorn", "app.main:app"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["UVICORN_PROXY_HEADERS"] == "true"
    assert env["FORWARDED_ALLOW_IPS"] == "*"
    assert env["UVICORN_ROOT_PATH"] == "/api"
    # The user's own variable comes last, so Kubernetes lets it win.
    assert container["env"][-1] == {"name": "UVICORN_HOST", "value": "::"}


def test_every_container_meets_pod_security_restricted(render):
    pod = one(render(full=True), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = pod["containers"] + pod["initContainers"]
    assert len(containers) == 2
    for container in containers:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_a_privileged_port_adds_back_only_net_bind_service(render):
    context = app_container(render(port=80))["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}


def test_prestart_steps_are_init_containers_in_order_with_the_apps_image_and_env(render):
    steps = [{"name": "migrate", "command": ["alembic", "upgrade", "head"]},
             {"name": "seed", "command": ["python", "seed.py"], "image": "tools:1", "env": []}]
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    pod = one(render(preStart=steps, env=env), "Deployment")["spec"]["template"]["spec"]
    migrate, seed = pod["initContainers"]
    assert (migrate["name"], migrate["command"], migrate["image"]) == ("migrate", ["alembic", "upgrade", "head"],
                                                                       TEST_IMAGE)
    assert migrate["env"] == env
    assert seed["image"] == "tools:1" and "env" not in seed


def test_http_probes_on_health_path(render):
    container = app_container(render(healthPath="/health"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_tcp_probes_without_health_path(render):
    container = app_container(render())
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "http"}


def test_default_resources_fit_one_process(render):
    assert app_container(render())["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}


def test_resources_follow_the_spec(render):
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert app_container(render(resources=resources))["resources"] == resources


def test_rolling_update_without_downtime(render):
    strategy = one(render(), "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_replicas_are_left_to_the_autoscaler(render):
    assert one(render(replicas=3), "Deployment")["spec"]["replicas"] == 3
    autoscaled = one(render(replicas=3, autoscaling={"maxReplicas": 5}), "Deployment")
    assert "replicas" not in autoscaled["spec"]


def test_children_are_owned_and_labelled(render):
    for manifest in render(full=True).manifests:
        if manifest["kind"] == "ClusterIssuer":
            continue
        metadata = manifest["metadata"]
        assert metadata["namespace"] == "shop"
        assert metadata["ownerReferences"] == [{
            "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp", "name": "hello",
            "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
        assert metadata["labels"] == {"app.kubernetes.io/instance": "hello", "app.kubernetes.io/name": "hello",
                                      "app.kubernetes.io/managed-by": "fastapi-operator"}


def test_service_is_port_80_named_http_to_the_container_port(render):
    service = one(render(port=9000), "Service")
    assert service["spec"]["type"] == "ClusterIP"
    # Named after the app, so Traefik's `<namespace>-<service>-<port>` backend is each app's own.
    assert service["spec"]["ports"] == [{"name": service_port_name("shop", "hello"), "port": 80, "targetPort": "http",
                                         "protocol": "TCP"}]
    assert re.fullmatch(r"http-[0-9a-z]{10}", service_port_name("shop", "hello"))
    assert app_container(render(port=9000))["ports"][0] == {"name": "http", "containerPort": 9000, "protocol": "TCP"}
