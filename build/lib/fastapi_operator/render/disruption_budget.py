"""The PodDisruptionBudget: a node drain takes the app's pods one at a time, never all at once."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import selector_labels
from .common import child_metadata


def may_run_two_replicas(app: FastAPIApp) -> bool:
    """A budget only makes sense with two pods or more: with one, it would block every drain."""
    autoscaling = app.spec.autoscaling
    return (autoscaling.min_replicas if autoscaling is not None else app.spec.replicas) >= 2


def render_disruption_budget(app: FastAPIApp) -> dict[str, Any] | None:
    if not may_run_two_replicas(app):
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(app),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(app.name)},
            # A pod that is not Ready serves nothing: evicting it must not be blocked, or one
            # crash-looping pod would stop every node drain.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
