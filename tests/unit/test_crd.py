"""The CRD in crds/ is generated from api.py, structural, and carries the cross-field rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from fastapi_operator.crd import chart_crd_template, crd_yaml, render_crd
from fastapi_operator.reference import reference_markdown

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "fastapiapps.fastapi-operator.dev.yaml"
HOST_CLAIM_CRD_FILE = REPO / "crds" / "hostclaims.fastapi-operator.dev.yaml"
CHART_CRD_TEMPLATE = REPO / "charts" / "fastapi-operator" / "templates" / "crd.yaml"


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def version() -> dict[str, Any]:
    return render_crd()["spec"]["versions"][0]


def spec_schema() -> dict[str, Any]:
    return version()["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_committed_crd_is_the_generated_one():
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ is stale: run `make crd`"
    assert HOST_CLAIM_CRD_FILE.read_text() == crd_yaml("HostClaim"), "crds/ is stale: run `make crd`"
    assert CHART_CRD_TEMPLATE.read_text() == chart_crd_template(), "the chart's CRD is stale: run `make crd`"
    assert (REPO / "docs" / "api.md").read_text() == reference_markdown(), "docs/api.md is stale: run `make crd`"


def test_schema_is_structural():
    for path, node in schema_nodes(version()["schema"]["openAPIV3Schema"]):
        assert "anyOf" not in node and "$ref" not in node and "allOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("additionalProperties") is not False, path


def test_every_spec_field_is_described_for_kubectl_explain():
    undescribed = [path for path, node in schema_nodes(spec_schema()) if path and "description" not in node
                   and not path.endswith(("[]", "{}"))]
    assert undescribed == []


def test_cross_field_rules_are_cel_validations():
    properties = spec_schema()["properties"]
    tls_rules = [v["rule"] for v in properties["tls"]["x-kubernetes-validations"]]
    scaling_rules = [v["rule"] for v in properties["autoscaling"]["x-kubernetes-validations"]]
    assert "!(has(self.acme) && has(self.clusterIssuer))" in tls_rules
    assert "self.minReplicas <= self.maxReplicas" in scaling_rules
    assert properties["ingress"]["properties"]["path"]["pattern"].startswith("^/")
    assert "@" in properties["tls"]["properties"]["acme"]["properties"]["email"]["pattern"]


def test_defaults_are_in_the_schema():
    properties = spec_schema()["properties"]
    assert properties["app"]["default"] == "app/main.py"
    assert properties["port"]["default"] == 8000
    assert properties["replicas"]["default"] == 1
    assert properties["resources"]["default"] == {"limits": {"memory": "256Mi"},
                                                  "requests": {"cpu": "100m", "memory": "256Mi"}}


def test_scale_and_status_subresources_and_printer_columns():
    v = version()
    assert v["subresources"]["status"] == {}
    assert v["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert [c["name"] for c in v["additionalPrinterColumns"]] == ["URL", "Ready", "Status", "Replicas", "Parts", "Age"]
    assert render_crd()["spec"]["names"]["shortNames"] == ["fapp"]
