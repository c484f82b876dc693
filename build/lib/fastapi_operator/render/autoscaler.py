"""The HorizontalPodAutoscaler on CPU."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from .common import child_metadata


def render_autoscaler(app: FastAPIApp) -> dict[str, Any]:
    autoscaling = app.spec.autoscaling
    assert autoscaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(app),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
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
        },
    }
