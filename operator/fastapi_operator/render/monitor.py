"""The PodMonitor (Prometheus Operator) that scrapes the app's metrics from every pod."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..kinds import POD_MONITOR
from ..meta import selector_labels
from .common import PORT_NAME, child_metadata

METRICS_PORT_NAME = "metrics"  # a container port of the metrics' own


def metrics_port_name(app: FastAPIApp) -> str | None:
    """The container port the metrics are served on, by name; None without spec.metrics."""
    metrics = app.spec.metrics
    if metrics is None:
        return None
    return PORT_NAME if metrics.port in (None, app.spec.port) else METRICS_PORT_NAME


def metrics_container_port(app: FastAPIApp) -> dict[str, Any] | None:
    """The Deployment's second container port, when the metrics have a port of their own."""
    metrics = app.spec.metrics
    if metrics is None or metrics_port_name(app) != METRICS_PORT_NAME:
        return None
    return {"name": METRICS_PORT_NAME, "containerPort": metrics.port, "protocol": "TCP"}


def render_pod_monitor(app: FastAPIApp) -> dict[str, Any] | None:
    metrics = app.spec.metrics
    if metrics is None:
        return None
    return {
        "apiVersion": POD_MONITOR.api_version,
        "kind": POD_MONITOR.kind,
        "metadata": child_metadata(app),
        "spec": {
            "selector": {"matchLabels": selector_labels(app.name)},
            "podMetricsEndpoints": [{"port": metrics_port_name(app), "path": metrics.path,
                                     "interval": metrics.interval}],
        },
    }
