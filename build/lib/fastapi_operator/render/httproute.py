"""The Gateway API routes: the app's HTTPRoute (the prefix stripped with a URLRewrite, HSTS with a
response header filter) and, with HTTPS, a second HTTPRoute on the Gateway's HTTP listeners that
redirects to it. Both are the API's core filters, so every conformant Gateway does the same."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import redirect_ingress_name
from .common import child_metadata
from .gateway import GATEWAY_API_GROUP, GATEWAY_API_VERSION
from .plan import GatewayRoute, Plan
from .service import SERVICE_PORT

HSTS_HEADER = "Strict-Transport-Security"


def gateway_parent_refs(route: GatewayRoute, sections: tuple[str, ...]) -> list[dict[str, Any]]:
    return route.parent_refs(sections)


def listener_set_parent_refs(app: FastAPIApp) -> list[dict[str, Any]]:
    return [{"group": GATEWAY_API_GROUP, "kind": "ListenerSet", "namespace": app.namespace, "name": app.name}]


def app_route_parent_refs(app: FastAPIApp, plan: Plan) -> list[dict[str, Any]]:
    route = plan.gateway
    assert route is not None
    if route.own_listeners:
        return listener_set_parent_refs(app)
    return gateway_parent_refs(route, route.https_sections if plan.tls else route.http_sections)


def _path_match(path: str) -> list[dict[str, Any]]:
    # PathPrefix matches whole path elements: /api serves /api and /api/x, never /apix.
    return [{"path": {"type": "PathPrefix", "value": path}}]


def _http_route(app: FastAPIApp, name: str, parent_refs: list[dict[str, Any]],
                rule: dict[str, Any]) -> dict[str, Any]:
    assert app.spec.ingress is not None
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": child_metadata(app, name),
        "spec": {"parentRefs": parent_refs, "hostnames": list(app.spec.ingress.hosts), "rules": [rule]},
    }


def render_app_route(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    assert app.spec.ingress is not None
    filters: list[dict[str, Any]] = []
    if plan.root_path:
        filters.append({"type": "URLRewrite",
                        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}})
    hsts = app.spec.ingress.hsts
    if hsts is not None and plan.tls:
        filters.append({"type": "ResponseHeaderModifier",
                        "responseHeaderModifier": {"set": [{"name": HSTS_HEADER, "value": hsts.header()}]}})
    rule: dict[str, Any] = {"matches": _path_match(plan.root_path or "/")}
    if filters:
        rule["filters"] = filters
    rule["backendRefs"] = [{"group": "", "kind": "Service", "name": app.name, "port": SERVICE_PORT, "weight": 1}]
    return _http_route(app, app.name, app_route_parent_refs(app, plan), rule)


def render_redirect_route(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    route = plan.gateway
    assert route is not None
    rule = {"matches": _path_match(plan.root_path or "/"),
            "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
    return _http_route(app, redirect_ingress_name(app.name), gateway_parent_refs(route, route.http_sections), rule)


def render_http_routes(app: FastAPIApp, plan: Plan) -> list[dict[str, Any]]:
    if plan.gateway is None:
        return []
    routes = [render_app_route(app, plan)]
    if plan.tls and plan.gateway.http_sections:
        routes.append(render_redirect_route(app, plan))
    return routes
