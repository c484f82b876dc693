"""Metadata every namespaced child shares."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import child_labels, owner_reference


def child_metadata(
    app: FastAPIApp, name: str | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name or app.name,
        "namespace": app.namespace,
        "labels": child_labels(app.name),
    }
    if annotations:
        metadata["annotations"] = annotations
    # `render` without a cluster has no uid to point at; the reconciler always has one.
    if app.metadata.uid:
        metadata["ownerReferences"] = [owner_reference(app.name, app.metadata.uid)]
    return metadata


# The app's container port, by name: the Service, the probes, the NetworkPolicy and the PodMonitor
# refer to it so, and a port change rolls with old and new pods both reachable.
PORT_NAME = "http"
