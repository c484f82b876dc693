"""Pure rendering: a FastAPIApp and the operator's settings in, the manifests of its children out.
No API calls here; `reconcile.py` applies what this returns and `fastapi-operator render` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import FastAPIApp
from ..settings import Settings
from .autoscaler import render_autoscaler
from .certificate import render_gateway_certificate
from .deployment import render_deployment
from .disruption_budget import render_disruption_budget
from .gateway import Gateways
from .httproute import render_http_routes
from .ingress import render_ingresses
from .issuer import render_cluster_issuer
from .middleware import render_traefik_middlewares
from .migration import render_migration_job
from .monitor import render_pod_monitor
from .networkpolicy import render_network_policy
from .ingress_class import IngressClasses
from .listenerset import render_listener_set
from .plan import Plan, plan_app
from .service import render_service
from .worker import render_workloads


@dataclass(frozen=True)
class Rendered:
    plan: Plan
    # In the order they are applied: what others refer to comes first.
    manifests: list[dict[str, Any]]
    # The Job that must succeed before the Deployment's pods change (OncePerRollout steps).
    migration: dict[str, Any] | None = None
    # The workers' Deployments and autoscalers and the schedules' CronJobs: they wait for the
    # migration with the web Deployment, and are found by label (their names come from the spec).
    workloads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def every_manifest(self) -> list[dict[str, Any]]:
        """What `fastapi-operator render` prints: the migration Job first, as it runs first."""
        return ([self.migration] if self.migration else []) + self.manifests + self.workloads


def render_app(app: FastAPIApp, settings: Settings, classes: IngressClasses,
               gateways: Gateways | None = None) -> Rendered:
    """`classes` and `gateways`: what the cluster has (the reconciler reads them); `gateways`
    None assumes a conventional Gateway, for rendering without a cluster."""
    plan = plan_app(app, settings, classes, gateways)
    manifests: list[dict[str, Any]] = []
    if plan.acme is not None:
        manifests.append(render_cluster_issuer(plan.acme, plan))
    manifests += render_traefik_middlewares(app, plan)
    manifests.append(render_service(app))
    manifests.append(render_deployment(app, plan))
    manifests += render_ingresses(app, plan)
    certificate = render_gateway_certificate(app, plan)
    listener_set = render_listener_set(app, plan)
    manifests += [m for m in (certificate, listener_set) if m is not None]
    manifests += render_http_routes(app, plan)
    if app.spec.ingress is not None:
        manifests.append(render_network_policy(app, plan))
    if app.spec.autoscaling is not None:
        manifests.append(render_autoscaler(app))
    budget = render_disruption_budget(app)
    if budget is not None:
        manifests.append(budget)
    monitor = render_pod_monitor(app)
    if monitor is not None:
        manifests.append(monitor)
    return Rendered(plan, manifests, render_migration_job(app), render_workloads(app))
