"""The shared ACME ClusterIssuer (Let's Encrypt unless the spec or the settings name another server)."""

from __future__ import annotations

from typing import Any

from ..meta import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_SCOPE, OPERATOR_NAME
from .plan import Acme, Plan

ACME_ISSUER_COMPONENT = "acme-cluster-issuer"


def render_cluster_issuer(acme: Acme, plan: Plan) -> dict[str, Any]:
    """Cluster-scoped objects can't have namespaced owners, so no ownerReferences: the
    reconciler deletes the issuer when no FastAPIApp needs it any more."""
    spec: dict[str, Any] = {
        "server": acme.server,
        "email": acme.email,
        "privateKeySecretRef": {"name": acme.issuer_name},
        "solvers": [{"http01": acme.solver}],
    }
    if acme.ca_bundle:
        spec["caBundle"] = acme.ca_bundle
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {
            "name": acme.issuer_name,
            "labels": {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_COMPONENT: ACME_ISSUER_COMPONENT,
                       LABEL_SCOPE: acme.scope},
        },
        "spec": {"acme": spec},
    }
