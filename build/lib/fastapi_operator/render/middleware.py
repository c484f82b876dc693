"""Traefik Middlewares: strip the path prefix, redirect HTTP to HTTPS, and send HSTS."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import hsts_middleware_name, redirect_https_middleware_name, strip_prefix_middleware_name
from .common import child_metadata
from .plan import Plan

TRAEFIK_API_VERSION = "traefik.io/v1alpha1"


def _middleware(app: FastAPIApp, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": TRAEFIK_API_VERSION,
        "kind": "Middleware",
        "metadata": child_metadata(app, name),
        "spec": spec,
    }


def render_traefik_middlewares(app: FastAPIApp, plan: Plan) -> list[dict[str, Any]]:
    if app.spec.ingress is None or plan.ingress_flavour != "traefik":
        return []
    middlewares = []
    if plan.root_path:
        # StripPrefix also sets X-Forwarded-Prefix for the app.
        middlewares.append(_middleware(
            app, strip_prefix_middleware_name(app.namespace, app.name), {"stripPrefix": {"prefixes": [plan.root_path]}}
        ))
    if plan.tls:
        middlewares.append(_middleware(
            app, redirect_https_middleware_name(app.namespace, app.name),
            {"redirectScheme": {"scheme": "https", "permanent": True}},
        ))
    hsts = app.spec.ingress.hsts
    if hsts is not None and plan.tls:
        # The exact header, as on every flavour (Traefik's stsSeconds cannot say max-age=0).
        middlewares.append(_middleware(
            app, hsts_middleware_name(app.namespace, app.name),
            {"headers": {"customResponseHeaders": {"Strict-Transport-Security": hsts.header()}}},
        ))
    return middlewares
