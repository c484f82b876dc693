"""a) The CRD installs, explains itself, and the API server rejects what the model rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from fastapi_operator.api import FastAPIApp
from fastapi_operator.kube import FASTAPIAPP
from tests.manifests import INVALID_SPECS, VALID_SPECS, app_manifest

REPO = Path(__file__).resolve().parents[2]


def create(cluster, manifest, dry_run=False):
    query = [("fieldValidation", "Strict")] + ([("dryRun", "All")] if dry_run else [])
    return cluster.kube.request("POST", FASTAPIAPP.path(manifest["metadata"]["namespace"]), body=manifest, query=query)


def test_kubectl_explain_describes_the_prefix(cluster):
    result = cluster.kubectl("explain", "fastapiapp.spec.ingress.path")
    assert "--root-path" in result.stdout and "strips" in result.stdout


def test_at_least_fifteen_invalid_manifests_are_rejected_at_admission_naming_the_field(cluster, namespace):
    assert len(INVALID_SPECS) >= 15
    for case_id, spec, field in INVALID_SPECS:
        manifest = app_manifest(f"bad-{case_id}"[:63], namespace)
        manifest["spec"] = spec
        with pytest.raises(ApiException) as caught:
            create(cluster, manifest)
        message = json.loads(caught.value.body)["message"]
        assert caught.value.status in (400, 422), (case_id, message)
        assert field in message, f"{case_id}: {message}"
    assert cluster.kube.list(FASTAPIAPP, namespace) == []


@pytest.mark.parametrize("case_id,spec", VALID_SPECS, ids=[c[0] for c in VALID_SPECS])
def test_manifests_the_model_accepts_the_api_server_accepts(cluster, namespace, case_id, spec):
    create(cluster, app_manifest(case_id, namespace, **spec), dry_run=True)


def test_the_api_server_fills_in_the_models_defaults(cluster, namespace):
    created = create(cluster, app_manifest("defaults", namespace), dry_run=True)
    assert created["spec"]["app"] == "app/main.py"
    assert created["spec"]["port"] == 8000
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    assert created["spec"]["tls"] == {"enabled": True}


def test_every_example_is_accepted_by_the_api_server(cluster, namespace):
    examples = sorted((REPO / "examples").rglob("fastapiapp*.yaml"))
    assert len(examples) >= 2
    for path in examples:
        for document in yaml.safe_load_all(path.read_text()):
            document["metadata"]["namespace"] = namespace
            create(cluster, document, dry_run=True)


@pytest.mark.parametrize("name", ["1app", "dotted.name", "a" * 64, "ends-with-"])
def test_a_name_no_service_can_take_is_refused_at_admission_with_the_rule(cluster, namespace, name):
    with pytest.raises(ApiException) as caught:
        create(cluster, app_manifest(name, namespace))
    message = json.loads(caught.value.body)["message"]
    assert caught.value.status in (400, 422), message
    assert "metadata.name" in message and ("DNS-1035" in message or "63" in message), message
    with pytest.raises(ValueError, match="name"):
        FastAPIApp.model_validate(app_manifest(name, namespace))


def test_the_longest_name_a_service_can_take_is_accepted(cluster, namespace):
    create(cluster, app_manifest("a" * 63, namespace), dry_run=True)
