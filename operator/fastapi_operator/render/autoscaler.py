"""The HorizontalPodAutoscaler on CPU."""

from __future__ import annotations

from typing import Any

from ..api import AutoscalingSpec, FastAPIApp
from .common import child_metadata


def render_autoscaler(app: FastAPIApp) -> dict[str, Any]:
    autoscaling = app.spec.autoscaling
    assert autoscaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(app),
        "spec": autoscaler_spec(app.name, autoscaling),
    }


def autoscaler_spec(deployment: str, autoscaling: AutoscalingSpec) -> dict[str, Any]:
    """The web Deployment's autoscaler and each worker's."""
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": [{
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {
                    "type": "Utilization",
                    "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                },
            },
        }],
    }
