"""The certificate of the app's own Gateway listeners. With an Ingress, cert-manager's ingress-shim
makes it from an annotation; for a ListenerSet the operator makes it itself, which works with every
cert-manager release (its ListenerSet support is recent and behind a feature gate) and makes the
Certificate the app's own child, watched and repaired like the others."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import gateway_tls_name
from .common import child_metadata
from .plan import Plan


def render_gateway_certificate(app: FastAPIApp, plan: Plan) -> dict[str, Any] | None:
    if plan.gateway is None or not plan.gateway.own_listeners or app.spec.ingress is None:
        return None
    assert plan.issuer_name, "the app's own listeners always have a ClusterIssuer"
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": child_metadata(app, gateway_tls_name(app.name)),
        "spec": {
            "secretName": gateway_tls_name(app.name),
            "dnsNames": list(app.spec.ingress.hosts),
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": plan.issuer_name},
        },
    }
