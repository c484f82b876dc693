"""The app's own HTTPS listeners on the platform team's Gateway: a ListenerSet with one listener per
host, each terminating TLS with the app's certificate. The Gateway stays as the platform team wrote it."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import gateway_tls_name
from .common import child_metadata
from .gateway import GATEWAY_API_GROUP, GATEWAY_API_VERSION, HTTPS
from .plan import Plan


def listener_name(index: int) -> str:
    return f"https-{index}"


def render_listener_set(app: FastAPIApp, plan: Plan) -> dict[str, Any] | None:
    route = plan.gateway
    if route is None or not route.own_listeners or app.spec.ingress is None:
        return None
    port = route.facts.https_port()
    certificate = {"group": "", "kind": "Secret", "name": gateway_tls_name(app.name)}
    listeners = [{
        "name": listener_name(index), "hostname": host, "port": port, "protocol": HTTPS,
        "tls": {"mode": "Terminate", "certificateRefs": [certificate]},
        "allowedRoutes": {"namespaces": {"from": "Same"}},
    } for index, host in enumerate(app.spec.ingress.hosts)]
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "ListenerSet",
        "metadata": child_metadata(app),
        "spec": {
            "parentRef": {"group": GATEWAY_API_GROUP, "kind": "Gateway", "namespace": route.facts.namespace,
                          "name": route.facts.name},
            "listeners": listeners,
        },
    }
