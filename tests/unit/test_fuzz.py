"""Generated specs through validation and rendering, offline: each one either renders manifests or
gets an error naming a field, and nothing else escapes (tests/fuzzing.py says what is generated).
The API server's side of the same property is tests/integration/test_fuzz.py."""

from __future__ import annotations

import json
import re

from hypothesis import given
from pydantic import ValidationError

from fastapi_operator.api import FastAPIApp, describe_validation_error
from fastapi_operator.errors import InvalidSpec
from fastapi_operator.render import render_app
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from tests.fuzzing import SPECS, manifest

SETTINGS = Settings(_env_file=None, acme_email=None, ingress_class="nginx")
FIELD = re.compile(r"\bspec\.[A-Za-z]")


def outcome(spec, namespace="fuzz"):
    """("rejected", message), ("invalid", message) or ("rendered", manifests)."""
    try:
        app = FastAPIApp.model_validate(manifest(spec, namespace))
    except ValidationError as error:
        return "rejected", describe_validation_error(error)
    try:
        return "rendered", render_app(app, SETTINGS, CONVENTIONAL_CLASSES).every_manifest
    except InvalidSpec as error:
        return "invalid", error.message


@given(SPECS)
def test_a_generated_spec_renders_or_is_refused_with_the_field_named(spec):
    result, detail = outcome(spec)
    if result == "rejected":
        for problem in detail.split("; "):
            assert problem.startswith("spec"), problem  # spec.ingress.path: ..., or spec: for a cross-field rule
    elif result == "invalid":
        assert FIELD.search(detail), detail
    else:
        for rendered in detail:
            assert rendered["apiVersion"] and rendered["kind"] and rendered["metadata"]["name"]
            json.dumps(rendered)  # plain data, as the API client sends it
