"""The Helm chart, linted and rendered through Helm's Go SDK (helm-python-sdk): no cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "fastapi-operator"


RELEASE_NAMESPACE = "fastapi-operator-system"


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name="fo", namespace=RELEASE_NAMESPACE)
    return [doc for path, text in rendered.items() if path.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for m in manifests if m["kind"] in ("ClusterRole", "Role") for rule in m["rules"]]


def test_lint_finds_no_errors():
    report = helm.lint(CHART, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_render_has_the_crd_rbac_and_two_replicas_that_elect_a_leader():
    manifests = render()
    assert sorted({m["kind"] for m in manifests}) == [
        "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding",
        "Service", "ServiceAccount"]
    (deployment,) = of_kind(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FASTAPI_OPERATOR_LEADER_ELECTION"] == "true" and env["FASTAPI_OPERATOR_LEASE_NAMESPACE"] == RELEASE_NAMESPACE
    # Election needs one Lease in the release's namespace, and nothing more.
    (role,) = of_kind(manifests, "Role")
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["fastapi-operator"],
         "verbs": ["get", "patch"]}]
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "fastapi-operator"
        assert labels["app.kubernetes.io/instance"] == "fo"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_the_crds_upgrade_with_the_chart_and_are_kept_on_uninstall():
    crds = of_kind(render(), "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "fastapiapps.fastapi-operator.dev", "hostclaims.fastapi-operator.dev"]
    for crd in crds:
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert of_kind(render({"crds": {"install": False}}), "CustomResourceDefinition") == []
    for crd in of_kind(render({"crds": {"keep": False}}), "CustomResourceDefinition"):
        assert "annotations" not in crd["metadata"]


def test_operator_pod_is_restricted_with_a_liveness_probe_and_resources():
    (deployment,) = of_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["limits"]["memory"]
    assert container["args"] == ["run"]


def test_every_operator_setting_has_a_value_and_reaches_the_environment():
    from fastapi_operator.settings import Settings

    (deployment,) = of_kind(render({"operator": {"acmeEmail": "ops@example.com", "acmeServer": "https://ca.internal/dir",
                                                "acmeCaBundle": "TUlJQg==", "ingressClass": "traefik",
                                                "ingressNamespace": "traefik", "gateway": "infra/public",
                                                "maxHostsPerNamespace": 20, "monitoringNamespace": "monitoring"}}),
                                 "Deployment")
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {f"FASTAPI_OPERATOR_{name.upper()}" for name in Settings.model_fields}


def test_rbac_never_touches_secrets_pods_or_configmaps():
    for manifest_rules in (rules(render()), rules(render({"operator": {"namespaces": ["shop"]}}))):
        resources = {r for rule in manifest_rules for r in rule["resources"]}
        assert not resources & {"secrets", "pods", "configmaps", "*"}
        assert all("*" not in rule["verbs"] for rule in manifest_rules)
        # Server-side apply needs patch (and create for new objects), never update.
        assert not any("update" in rule["verbs"] for rule in manifest_rules)


def test_watching_namespaces_grants_namespaced_rights_only_there():
    manifests = render({"operator": {"namespaces": ["shop", "blog"]}})
    (cluster_role,) = of_kind(manifests, "ClusterRole")
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "clusterissuers", "gateways", "hostclaims", "ingressclasses"}
    (gateway_rule,) = [rule for rule in cluster_role["rules"] if "gateways" in rule["resources"]]
    assert gateway_rule["verbs"] == ["get", "list", "watch"]  # the platform team's: read, never written
    assert sorted(role["metadata"]["namespace"] for role in of_kind(manifests, "Role")) == ["blog", RELEASE_NAMESPACE, "shop"]
    assert sorted(b["metadata"]["namespace"] for b in of_kind(manifests, "RoleBinding")) == ["blog", RELEASE_NAMESPACE, "shop"]


@pytest.mark.parametrize("values", [
    {"operator": {"logFormat": "xml"}},
    {"operator": {"acmeEnvironment": "testing"}},
    {"operator": {"namespaces": ["Not_A_Namespace"]}},
    {"operator": {"workers": 0}},
    {"unknownKey": True},
])
def test_values_schema_rejects_bad_values(values):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema(values)


def test_notes_point_to_the_argocd_health_check():
    with helm.Chart.load(CHART) as chart:
        notes = chart.render({}, name="fo", namespace="x")["fastapi-operator/templates/NOTES.txt"]
    assert "resource.customizations.health.fastapi-operator.dev_FastAPIApp" in notes


def test_the_charts_namespaced_rights_are_generated_from_the_registry_of_child_kinds():
    from fastapi_operator.crd import chart_rbac_template
    from fastapi_operator.kinds import CHILDREN

    committed = (Path(__file__).resolve().parents[2] / "charts" / "fastapi-operator" / "templates"
                 / "_namespaced_rules.tpl").read_text()
    assert committed == chart_rbac_template(), "run `make crd`: the chart's RBAC differs from kinds.py"
    namespaced = {r for rule in rules(render({"operator": {"namespaces": ["shop"]}})) for r in rule["resources"]}
    assert {child.kind.plural for child in CHILDREN} <= namespaced


def test_metrics_have_a_port_a_service_and_on_request_a_service_monitor():
    manifests = render()
    (deployment,) = of_kind(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 8081} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FASTAPI_OPERATOR_METRICS_PORT"] == "8081"
    (service,) = of_kind(manifests, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert not of_kind(manifests, "ServiceMonitor"), "no ServiceMonitor unless asked: its CRD may be missing"

    monitored = render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}}})
    (monitor,) = of_kind(monitored, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]

    off = render({"operator": {"metricsPort": 0}})
    assert not of_kind(off, "Service")
    (deployment,) = of_kind(off, "Deployment")
    assert [p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["health"]


def test_the_prometheus_rule_carries_the_alerts_file_when_asked():
    assert not of_kind(render(), "PrometheusRule")
    (rule,) = of_kind(render({"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prom"}}}}),
                      "PrometheusRule")
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == alerts
    assert {r["alert"] for r in rule["spec"]["groups"][0]["rules"]} == {
        "FastAPIAppNotReady", "FastAPIAppMigrationFailed", "FastAPIOperatorReconcileErrors", "FastAPIOperatorNoLeader",
        "FastAPIOperatorQueueGrowing"}
    assert rule["metadata"]["labels"]["release"] == "prom"
