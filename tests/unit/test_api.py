"""The spec model: defaults, and the same accept/reject verdicts the CRD gives (the integration
suite runs this corpus through the API server)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fastapi_operator.api import FastAPIApp, FastAPIAppSpec, describe_validation_error
from tests.manifests import INVALID_SPECS, VALID_SPECS, app_manifest


def test_defaults_match_the_documented_api():
    spec = FastAPIAppSpec.model_validate({"image": "hello:1"})
    assert spec.app == "app/main.py"
    assert spec.port == 8000
    assert spec.replicas == 1
    assert spec.resources.wire() == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    assert spec.tls.enabled is True
    assert spec.ingress is None and spec.autoscaling is None and spec.health_path is None


def test_ingress_path_defaults_to_root():
    spec = FastAPIAppSpec.model_validate({"image": "hello:1", "ingress": {"hosts": ["a.example.com"]}})
    assert spec.ingress.path == "/"


@pytest.mark.parametrize("case_id,spec", VALID_SPECS, ids=[c[0] for c in VALID_SPECS])
def test_valid_specs_are_accepted(case_id, spec):
    FastAPIApp.model_validate(app_manifest(**spec))


@pytest.mark.parametrize("case_id,spec,field", INVALID_SPECS, ids=[c[0] for c in INVALID_SPECS])
def test_invalid_specs_are_rejected_naming_the_field(case_id, spec, field):
    with pytest.raises(ValidationError) as caught:
        FastAPIApp.model_validate(app_manifest(**spec) | {"spec": spec})
    assert field in describe_validation_error(caught.value)


def test_error_names_the_field_as_users_write_it():
    manifest = app_manifest(ingress={"hosts": ["a.example.com"], "path": "api"})
    with pytest.raises(ValidationError) as caught:
        FastAPIApp.model_validate(manifest)
    assert describe_validation_error(caught.value).startswith("spec.ingress.path:")


def test_duplicate_prestart_names_are_rejected():
    steps = [{"name": "migrate", "command": ["a"]}, {"name": "migrate", "command": ["b"]}]
    with pytest.raises(ValidationError, match="preStart step names must be unique"):
        FastAPIAppSpec.model_validate({"image": "hello:1", "preStart": steps})
