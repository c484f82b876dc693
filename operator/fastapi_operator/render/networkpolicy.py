"""The NetworkPolicy that makes trusting forwarded headers safe: only the ingress controller's
namespace reaches the app's pods, so no other pod can forge X-Forwarded-For or -Proto. That is the
namespace of the controller behind the app's own IngressClass (render/ingress_class.py)."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import selector_labels
from .common import PORT_NAME, child_metadata
from .monitor import metrics_port_name
from .plan import Plan

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _from_namespace(namespace: str, port: str) -> dict[str, Any]:
    return {"from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}],
            "ports": [{"port": port, "protocol": "TCP"}]}


def render_network_policy(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    assert plan.ingress_namespace, "an app with an Ingress always knows its controller's namespace"
    # Prometheus, on the metrics port only (the app's own port when the metrics share it: then the
    # monitoring namespace is trusted like the proxy, which docs/observability.md says).
    scrape = metrics_port_name(app)
    scraped = [_from_namespace(plan.monitoring_namespace, scrape)] if scrape and plan.monitoring_namespace else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(app),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(app.name)},
            "policyTypes": ["Ingress"],
            # By name, like the Service: old pods on the old port and new pods on the new one are
            # both admitted while a port change rolls, whatever is written first.
            "ingress": [_from_namespace(plan.ingress_namespace, PORT_NAME), *scraped],
        },
    }
