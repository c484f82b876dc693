"""The NetworkPolicy that makes trusting forwarded headers safe: only the ingress controller's
namespace reaches the app's pods, so no other pod can forge X-Forwarded-For or -Proto. That is the
namespace of the controller behind the app's own IngressClass (render/ingress_class.py)."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import selector_labels
from .common import child_metadata
from .deployment import PORT_NAME
from .plan import Plan

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def render_network_policy(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    assert plan.ingress_namespace, "an app with an Ingress always knows its controller's namespace"
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(app),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(app.name)},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: plan.ingress_namespace}}}],
                # By name, like the Service: old pods on the old port and new pods on the new one are
                # both admitted while a port change rolls, whatever is written first.
                "ports": [{"port": PORT_NAME, "protocol": "TCP"}],
            }],
        },
    }
