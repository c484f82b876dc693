"""Generated specs against the real API server (tests/fuzzing.py says what is generated):
- what the model accepts, the API server accepts too (render and `kubectl apply` agree), and what
  the API server refuses, it refuses naming the field;
- every manifest a valid spec renders passes the API server's dry run, or is refused naming the
  field (the reconciler turns that refusal into InvalidSpec before writing anything)."""

from __future__ import annotations

import re

from hypothesis import given
from kubernetes.client.exceptions import ApiException

from fastapi_operator.kube import FASTAPIAPP, api_message
from tests.fuzzing import SPECS, manifest
from tests.unit.test_fuzz import outcome

FIELD = re.compile(r"\b(spec|metadata)\.[A-Za-z]|\bspec\b")


def dry_run(cluster, document, *, as_kubectl_apply: bool = False) -> str | None:
    """None when accepted, else the API server's message. `as_kubectl_apply`: a create with strict
    field validation, as `kubectl apply` of a new object sends it; otherwise the operator's own
    server-side apply (its children never carry unknown fields)."""
    try:
        if as_kubectl_apply:
            cluster.kube.request("POST", FASTAPIAPP.path(document["metadata"]["namespace"]), body=document,
                               query=[("dryRun", "All"), ("fieldValidation", "Strict")])
        else:
            cluster.kube.apply(document, dry_run=True)
    except ApiException as error:
        assert error.status in (400, 422), (error.status, api_message(error))
        return api_message(error)
    return None


@given(SPECS)
def test_a_generated_spec_is_judged_alike_by_the_model_and_the_api_server(cluster, namespace, spec):
    document = manifest(spec, namespace)
    refused = dry_run(cluster, document, as_kubectl_apply=True)
    result, detail = outcome(spec, namespace)
    if refused is not None:
        assert FIELD.search(refused), refused
        assert result == "rejected", f"the API server refuses what the model accepts: {refused}"
    if result != "rendered":
        return
    for rendered in detail:
        problem = dry_run(cluster, rendered)
        assert problem is None or FIELD.search(problem), f"{rendered['kind']}: {problem}"
