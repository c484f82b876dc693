"""Production rollouts, rendered: the migration Job, graceful shutdown, the PodDisruptionBudget,
spreading, the pod settings users ask for, and HSTS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fastapi_operator.meta import hsts_middleware_name
from fastapi_operator.api import FastAPIApp
from fastapi_operator.meta import selector_labels
from tests.manifests import app_manifest
from tests.unit.conftest import by_kind, one

MIGRATE = {"name": "migrate", "command": ["alembic", "upgrade", "head"], "run": "OncePerRollout"}
WAIT = {"name": "wait-for-db", "command": ["python", "-m", "app.wait"]}
INGRESS = {"hosts": ["hello.example.com"], "path": "/api"}
TLS = {"acme": {"email": "ops@example.com"}}


def pod_spec(rendered):
    return one(rendered, "Deployment")["spec"]["template"]["spec"]


def test_a_once_per_rollout_step_is_a_job_and_not_an_init_container(render):
    rendered = render(preStart=[WAIT, MIGRATE], env=[{"name": "DATABASE_URL", "value": "postgres://db"}])
    assert [c["name"] for c in pod_spec(rendered)["initContainers"]] == ["wait-for-db"]
    job = rendered.migration
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("hello-migrate-")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "FastAPIApp"
    # A step that exits non-zero fails the Job at once; a pod lost to a disruption is not counted.
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "FailJob", "onExitCodes": {"operator": "In", "values": list(range(1, 128))}}
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    template = job["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert container["command"] == ["alembic", "upgrade", "head"]
    assert container["env"] == [{"name": "DATABASE_URL", "value": "postgres://db"}]
    assert template["spec"]["restartPolicy"] == "Never"
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    # Its pod must not look like one of the app's: the Service would send it requests.
    labels = template["metadata"]["labels"]
    assert not selector_labels("hello").items() <= labels.items()


def test_steps_run_once_in_order_in_one_pod(render):
    second = {**MIGRATE, "name": "seed", "command": ["python", "-m", "app.seed"]}
    job = render(preStart=[MIGRATE, second]).migration
    assert [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]] == ["migrate"]
    assert [c["name"] for c in job["spec"]["template"]["spec"]["containers"]] == ["seed"]


def test_the_job_is_named_after_what_it_runs(render):
    name = render(preStart=[MIGRATE]).migration["metadata"]["name"]
    assert render(preStart=[MIGRATE], replicas=5, command=["uvicorn", "app.main:app"]).migration["metadata"]["name"] == name
    assert render(preStart=[MIGRATE], nodeSelector={"pool": "db"}).migration["metadata"]["name"] != name
    assert render(preStart=[MIGRATE], image="hello:2").migration["metadata"]["name"] != name
    assert render(preStart=[{**MIGRATE, "command": ["alembic", "upgrade", "+1"]}]).migration["metadata"]["name"] != name
    assert render(preStart=[MIGRATE], env=[{"name": "A", "value": "1"}]).migration["metadata"]["name"] != name
    long = render(preStart=[{**MIGRATE, "name": "m" * 63}]).migration["metadata"]["name"]
    assert len(long) <= 63


def test_no_once_per_rollout_step_means_no_job(render):
    assert render(preStart=[WAIT]).migration is None
    assert render().migration is None


def test_an_unknown_run_value_is_refused_with_the_field_named():
    with pytest.raises(ValidationError, match="run"):
        FastAPIApp.model_validate(app_manifest(preStart=[{**MIGRATE, "run": "Twice"}]))


def test_shutdown_defaults_add_change_and_remove(render):
    spec = pod_spec(render())
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert spec["terminationGracePeriodSeconds"] == 30
    spec = pod_spec(render(shutdown={"drainSeconds": 10, "timeoutSeconds": 50}))
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert spec["terminationGracePeriodSeconds"] == 60
    spec = pod_spec(render(shutdown={"drainSeconds": 0}))
    assert "lifecycle" not in spec["containers"][0]
    assert spec["terminationGracePeriodSeconds"] == 25


def test_a_custom_command_gets_the_graceful_shutdown_timeout(render):
    container = pod_spec(render(command=["uvicorn", "app.main:app"], shutdown={"timeoutSeconds": 40}))["containers"][0]
    assert {"name": "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "value": "40"} in container["env"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}


@pytest.mark.parametrize("spec, budget", [
    ({}, False), ({"replicas": 2}, True), ({"replicas": 0}, False),
    ({"autoscaling": {"minReplicas": 1, "maxReplicas": 5}}, False),
    ({"autoscaling": {"minReplicas": 2, "maxReplicas": 5}}, True),
])
def test_a_disruption_budget_whenever_two_replicas_are_possible(render, spec, budget):
    budgets = by_kind(render(**spec), "PodDisruptionBudget")
    assert bool(budgets) == budget
    if budget:
        assert budgets[0]["spec"]["maxUnavailable"] == 1
        assert budgets[0]["spec"]["selector"] == {"matchLabels": selector_labels("hello")}


def test_replicas_spread_softly_over_nodes_and_zones(render):
    constraints = pod_spec(render(replicas=3))["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in constraints)


def test_pod_settings_reach_the_deployment_and_the_job(render):
    settings = {
        "imagePullSecrets": [{"name": "registry"}],
        "serviceAccountName": "shop-api",
        "nodeSelector": {"pool": "api"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["arm64"]}]}]}}},
        "podLabels": {"team": "shop"},
        "podAnnotations": {"prometheus.io/scrape": "true"},
    }
    rendered = render(preStart=[MIGRATE], **settings)
    for template in (one(rendered, "Deployment")["spec"]["template"], rendered.migration["spec"]["template"]):
        spec = template["spec"]
        assert spec["imagePullSecrets"] == [{"name": "registry"}]
        assert spec["serviceAccountName"] == "shop-api"
        assert "automountServiceAccountToken" not in spec, "the ServiceAccount's own setting decides"
        assert spec["nodeSelector"] == {"pool": "api"}
        assert spec["tolerations"] == settings["tolerations"]
        assert spec["affinity"] == settings["affinity"]
        assert template["metadata"]["labels"]["team"] == "shop"
        assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
        assert spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec(render())["automountServiceAccountToken"] is False
    assert pod_spec(render())["serviceAccountName"] == "default"


@pytest.mark.parametrize("field, value, named", [
    ("podLabels", {"app.kubernetes.io/name": "other"}, "app.kubernetes.io/name"),
    ("podLabels", {"team": "not a value"}, "podLabels"),
    ("podAnnotations", {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}, "apparmor"),
    ("tolerations", [{"key": "a", "operator": "Maybe"}], "operator"),
    ("affinity", {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}, "topologyKey"),
    ("imagePullSecrets", [{"name": "Not_A_Name"}], "name"),
    ("serviceAccountName", "Bad Name", "serviceAccountName"),
    ("shutdown", {"drainSeconds": -1}, "drainSeconds"),
])
def test_bad_pod_settings_are_refused_with_the_field_named(field, value, named):
    with pytest.raises(ValidationError) as error:
        FastAPIApp.model_validate(app_manifest(**{field: value}))
    assert named.lower() in str(error.value).lower()


def test_hsts_on_traefik_is_a_headers_middleware_on_the_https_router(render):
    rendered = render(ingress={**INGRESS, "className": "traefik", "hsts": {"includeSubDomains": True}}, tls=TLS)
    (hsts,) = [m for m in by_kind(rendered, "Middleware") if m["metadata"]["name"] == hsts_middleware_name("shop", "hello")]
    assert hsts["spec"] == {"headers": {"customResponseHeaders": {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains"}}}
    ingress = next(i for i in by_kind(rendered, "Ingress") if i["metadata"]["name"] == "hello")
    assert f"shop-{hsts_middleware_name('shop', 'hello')}@kubernetescrd" in ingress["metadata"]["annotations"][
        "traefik.ingress.kubernetes.io/router.middlewares"]


def test_hsts_on_nginx_replaces_the_controllers_header(render):
    ingress = one(render(ingress={**INGRESS, "hsts": {"maxAgeSeconds": 600}}, tls=TLS), "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] == \
        'more_set_headers "Strict-Transport-Security: max-age=600";'
    assert "configuration-snippet" not in str(one(render(ingress=INGRESS, tls=TLS), "Ingress"))


def test_hsts_preload_needs_subdomains_and_a_year_and_hsts_needs_tls():
    with pytest.raises(ValidationError, match="preload"):
        FastAPIApp.model_validate(app_manifest(ingress={**INGRESS, "hsts": {"preload": True}}, tls=TLS))
    with pytest.raises(ValidationError, match="tls.enabled"):
        FastAPIApp.model_validate(app_manifest(ingress={**INGRESS, "hsts": {}}, tls={"enabled": False}))
