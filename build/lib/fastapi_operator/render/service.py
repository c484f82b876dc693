"""The Service: port 80, named http, in front of the app's container port."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import selector_labels
from .common import child_metadata
from .deployment import PORT_NAME

SERVICE_PORT = 80


def render_service(app: FastAPIApp) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(app),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(app.name),
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
