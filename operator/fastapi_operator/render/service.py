"""The Service: port 80, named after the app (meta.service_port_name), in front of the container's port `http`."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import selector_labels, service_port_name
from .common import PORT_NAME, child_metadata

SERVICE_PORT = 80


def render_service(app: FastAPIApp) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(app),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(app.name),
            "ports": [{"name": service_port_name(app.namespace, app.name), "port": SERVICE_PORT, "targetPort": PORT_NAME,
                       "protocol": "TCP"}],
        },
    }
