"""The HostClaim that reserves a host for the namespace of the first app that serves it."""

from __future__ import annotations

from typing import Any

from ..api import API_VERSION, HOST_CLAIM_KIND, FastAPIApp
from ..meta import ANNOTATION_CLAIMED_BY, LABEL_MANAGED_BY, LABEL_SCOPE, OPERATOR_NAME


def render_host_claim(app: FastAPIApp, host: str, scope: str) -> dict[str, Any]:
    """Cluster-scoped, so no owner: the operator deletes it when no app in the namespace serves
    the host any more. The annotation only names the first app for people reading a Conflict."""
    return {
        "apiVersion": API_VERSION,
        "kind": HOST_CLAIM_KIND,
        "metadata": {
            "name": host,
            "labels": {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_SCOPE: scope},
            "annotations": {ANNOTATION_CLAIMED_BY: f"{app.namespace}/{app.name}"},
        },
        "spec": {"namespace": app.namespace},
    }
