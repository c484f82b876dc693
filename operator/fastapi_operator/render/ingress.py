"""The Ingress: HTTPS with a cert-manager certificate, HTTP redirected to it, and the path
prefix stripped before the request reaches the app (which gets it back as --root-path)."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..meta import (
    CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION,
    hsts_middleware_name,
    service_port_name,
    redirect_https_middleware_name,
    redirect_ingress_name,
    strip_prefix_middleware_name,
    tls_secret_name,
)
from .common import child_metadata
from .plan import Plan

NGINX = "nginx.ingress.kubernetes.io/"
TRAEFIK = "traefik.ingress.kubernetes.io/"


def traefik_middleware_ref(namespace: str, name: str) -> str:
    return f"{namespace}-{name}@kubernetescrd"


def nginx_literal_regex(prefix: str) -> str:
    """The prefix as a regex that matches only itself: ingress-nginx matches regex paths
    case-insensitively (`location ~*`), so `(?-i)` turns that off (after the leading '/', which
    the Ingress API requires first), and the only metacharacter the API lets into a path is '.'."""
    return "/(?-i)" + prefix[1:].replace(".", "\\.")


def _rules(app: FastAPIApp, paths: list[tuple[str, str]]) -> list[dict[str, Any]]:
    assert app.spec.ingress is not None
    # By the Service port's name, which is the app's own: Traefik names the backend after it.
    backend = {"service": {"name": app.name, "port": {"name": service_port_name(app.namespace, app.name)}}}
    http = {"paths": [{"path": path, "pathType": path_type, "backend": backend} for path, path_type in paths]}
    return [{"host": host, "http": http} for host in app.spec.ingress.hosts]


def traefik_paths(root_path: str | None) -> list[tuple[str, str]]:
    """Traefik turns a Prefix path into a plain string prefix, so /api would also serve /apix.
    The prefix itself (Exact) and what lies below it (Prefix with the slash) are exactly the
    paths under it, element by element, as the Ingress API defines Prefix."""
    if not root_path:
        return [("/", "Prefix")]
    return [(root_path, "Exact"), (f"{root_path}/", "Prefix")]


def _tls(app: FastAPIApp) -> list[dict[str, Any]]:
    assert app.spec.ingress is not None
    return [{"hosts": list(app.spec.ingress.hosts), "secretName": tls_secret_name(app.namespace, app.name)}]


def _ingress(app: FastAPIApp, plan: Plan, name: str, annotations: dict[str, str],
             rules: list[dict[str, Any]], tls: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"ingressClassName": plan.ingress_class, "rules": rules}
    if tls:
        spec["tls"] = _tls(app)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": child_metadata(app, name, annotations),
        "spec": spec,
    }


def _certificate_annotations(plan: Plan) -> dict[str, str]:
    """cert-manager's ingress-shim makes the Certificate for the TLS secret from this annotation."""
    if not plan.tls:
        return {}
    assert plan.issuer_name, "a TLS plan always names its ClusterIssuer"
    return {CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION: plan.issuer_name}


def render_nginx_ingress(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if plan.root_path:
        # /api, /api/ and /api/x reach the app as /, / and /x; /apix and /API do not match.
        path, path_type = f"{nginx_literal_regex(plan.root_path)}(/|$)(.*)", "ImplementationSpecific"
        annotations[NGINX + "use-regex"] = "true"
        annotations[NGINX + "rewrite-target"] = "/$2"
        annotations[NGINX + "x-forwarded-prefix"] = plan.root_path
    else:
        path, path_type = "/", "Prefix"
    annotations.update(_certificate_annotations(plan))
    if plan.tls:
        annotations[NGINX + "ssl-redirect"] = "true"
        annotations[NGINX + "force-ssl-redirect"] = "true"
        hsts = app.spec.ingress.hsts if app.spec.ingress else None
        if hsts is not None:
            # ingress-nginx has no per-Ingress HSTS setting, only a snippet. more_set_headers
            # replaces the controller's global header (on by default) instead of adding a second.
            annotations[NGINX + "configuration-snippet"] = (
                f'more_set_headers "Strict-Transport-Security: {hsts.header()}";')
    else:
        annotations[NGINX + "ssl-redirect"] = "false"
    return _ingress(app, plan, app.name, annotations, _rules(app, [(path, path_type)]), plan.tls)


def render_traefik_ingresses(app: FastAPIApp, plan: Plan) -> list[dict[str, Any]]:
    """Traefik serves a TLS router on websecure only, so the HTTP-to-HTTPS redirect needs a
    second router: a small Ingress on the web entrypoint with a redirectScheme Middleware."""
    paths = traefik_paths(plan.root_path)
    middlewares = []
    if plan.root_path:
        middlewares.append(traefik_middleware_ref(app.namespace, strip_prefix_middleware_name(app.namespace, app.name)))
    if plan.tls and app.spec.ingress is not None and app.spec.ingress.hsts is not None:
        middlewares.append(traefik_middleware_ref(app.namespace, hsts_middleware_name(app.namespace, app.name)))
    annotations = _certificate_annotations(plan)
    if plan.tls:
        annotations[TRAEFIK + "router.entrypoints"] = "websecure"
        annotations[TRAEFIK + "router.tls"] = "true"
    else:
        annotations[TRAEFIK + "router.entrypoints"] = "web"
    if middlewares:
        annotations[TRAEFIK + "router.middlewares"] = ",".join(middlewares)
    ingresses = [_ingress(app, plan, app.name, annotations, _rules(app, paths), plan.tls)]
    if plan.tls:
        redirect = traefik_middleware_ref(app.namespace, redirect_https_middleware_name(app.namespace, app.name))
        redirect_annotations = {
            TRAEFIK + "router.entrypoints": "web",
            TRAEFIK + "router.middlewares": redirect,
        }
        ingresses.append(
            _ingress(app, plan, redirect_ingress_name(app.name), redirect_annotations,
                     _rules(app, paths), tls=False)
        )
    return ingresses


def render_plain_ingress(app: FastAPIApp, plan: Plan) -> dict[str, Any]:
    """Any other controller: the Ingress API alone, with no prefix stripping, HTTP redirect or HSTS.
    The prefix still reaches the app as --root-path, and Starlette routes a path that keeps it."""
    path = plan.root_path or "/"
    return _ingress(app, plan, app.name, _certificate_annotations(plan), _rules(app, [(path, "Prefix")]), plan.tls)


def render_ingresses(app: FastAPIApp, plan: Plan) -> list[dict[str, Any]]:
    if app.spec.ingress is None or plan.gateway is not None:
        return []
    if plan.ingress_flavour == "traefik":
        return render_traefik_ingresses(app, plan)
    if plan.ingress_flavour == "nginx":
        return [render_nginx_ingress(app, plan)]
    return [render_plain_ingress(app, plan)]
