"""Gateway API routing, rendered offline: the shape of the routes, their filters and the
ListenerSet, the choices made from the Gateway's listeners, and Ready from route and listener
conditions."""

from __future__ import annotations

import pytest

from fastapi_operator.api import FastAPIApp
from fastapi_operator.errors import InvalidSpec
from fastapi_operator.render import render_app
from fastapi_operator.render.gateway import GatewayFacts, GatewayListener
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from fastapi_operator.status import gateway_readiness
from tests.manifests import app_manifest

TLS = {"acme": {"email": "ops@example.com"}}
HTTP = GatewayListener("web", "HTTP", 80, None)
HTTPS = GatewayListener("websecure", "HTTPS", 8443, "*.example.com")


def facts(*listeners, allowed="All", proxy="edge", namespace="infra", name="public"):
    return GatewayFacts(namespace, name, listeners or (HTTP, HTTPS), allowed, proxy)


def render(ingress=None, tls=TLS, gateways=None, settings=None, **spec):
    ingress = ingress or {"hosts": ["shop.example.com"], "path": "/api",
                          "gateway": {"name": "public", "namespace": "infra"}}
    manifest = app_manifest("shop", "web", ingress=ingress, tls=tls, **spec)
    manifest["metadata"]["uid"] = "uid-1"
    gateway = facts()
    return render_app(FastAPIApp.model_validate(manifest), settings or Settings(_env_file=None),
                      CONVENTIONAL_CLASSES, {gateway.key: gateway} if gateways is None else gateways)


def kinds(rendered):
    return [(m["kind"], m["metadata"]["name"]) for m in rendered.manifests]


def named(rendered, kind, name):
    (manifest,) = [m for m in rendered.manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return manifest


def test_own_listeners_render_a_listener_set_a_certificate_and_two_routes_and_no_ingress():
    rendered = render(ingress={"hosts": ["shop.example.com", "www.shop.example.com"], "path": "/api",
                               "gateway": {"name": "public", "namespace": "infra"}, "hsts": {}})
    assert [k for k in kinds(rendered) if k[0] in ("Ingress", "Middleware")] == []
    listener_set = named(rendered, "ListenerSet", "shop")
    assert listener_set["spec"]["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                 "namespace": "infra", "name": "public"}
    assert [(entry["name"], entry["hostname"], entry["port"], entry["protocol"])
            for entry in listener_set["spec"]["listeners"]] == [
        ("https-0", "shop.example.com", 8443, "HTTPS"), ("https-1", "www.shop.example.com", 8443, "HTTPS")]
    assert listener_set["spec"]["listeners"][0]["tls"] == {
        "mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "shop.gateway-tls"}]}
    certificate = named(rendered, "Certificate", "shop.gateway-tls")
    assert certificate["spec"]["dnsNames"] == ["shop.example.com", "www.shop.example.com"]
    assert certificate["spec"]["issuerRef"]["name"] == rendered.plan.issuer_name
    assert certificate["metadata"]["ownerReferences"][0]["uid"] == "uid-1"

    route = named(rendered, "HTTPRoute", "shop")
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "ListenerSet",
                                            "namespace": "web", "name": "shop"}]
    assert route["spec"]["hostnames"] == ["shop.example.com", "www.shop.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert rule["filters"] == [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "set": [{"name": "Strict-Transport-Security", "value": "max-age=31536000"}]}},
    ]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 1}]

    redirect = named(rendered, "HTTPRoute", "shop.http-redirect")
    assert redirect["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                               "namespace": "infra", "name": "public", "sectionName": "web"}]
    assert redirect["spec"]["rules"][0]["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]


def test_the_prefix_still_reaches_the_app_as_root_path_and_the_policy_admits_the_proxy():
    rendered = render()
    container = named(rendered, "Deployment", "shop")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("--root-path") + 1] == "/api"
    policy = named(rendered, "NetworkPolicy", "shop")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "edge"}
    assert rendered.plan.url == "https://shop.example.com/api"


def test_the_issuer_solves_http01_through_the_gateways_http_listener_and_is_not_the_ingress_one():
    rendered = render()
    issuer = named(rendered, "ClusterIssuer", rendered.plan.issuer_name)
    assert issuer["spec"]["acme"]["solvers"] == [{"http01": {"gatewayHTTPRoute": {"parentRefs": [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra", "name": "public",
         "sectionName": "web"}]}}}]
    ingress_app = render(ingress={"hosts": ["shop.example.com"], "className": "traefik"})
    assert ingress_app.plan.issuer_name != rendered.plan.issuer_name


def test_the_gateways_own_listeners_get_routes_only():
    rendered = render(ingress={"hosts": ["shop.example.com"], "gateway": {
        "name": "public", "namespace": "infra", "listeners": "Gateway"}}, tls={"enabled": True})
    assert sorted(k for k in kinds(rendered) if k[0] in ("HTTPRoute", "ListenerSet", "Certificate", "ClusterIssuer")) == [
        ("HTTPRoute", "shop"), ("HTTPRoute", "shop.http-redirect")]
    assert [ref["sectionName"] for ref in named(rendered, "HTTPRoute", "shop")["spec"]["parentRefs"]] == ["websecure"]
    assert "filters" not in named(rendered, "HTTPRoute", "shop")["spec"]["rules"][0]  # path "/": nothing to strip


def test_plain_http_attaches_to_the_http_listener_with_no_redirect():
    rendered = render(tls={"enabled": False})
    assert [ref["sectionName"] for ref in named(rendered, "HTTPRoute", "shop")["spec"]["parentRefs"]] == ["web"]
    assert [k for k in kinds(rendered) if k[0] in ("ListenerSet", "Certificate")] == []
    assert ("HTTPRoute", "shop.http-redirect") not in kinds(rendered)
    assert rendered.plan.url == "http://shop.example.com/api"


def test_listeners_are_chosen_by_hostname():
    other = GatewayListener("other", "HTTPS", 443, "*.other.org")
    exact = GatewayListener("exact", "HTTPS", 443, "shop.example.com")
    gateway = facts(HTTP, other, exact)
    rendered = render(ingress={"hosts": ["shop.example.com"], "gateway": {
        "name": "public", "namespace": "infra", "listeners": "Gateway"}}, tls={}, gateways={gateway.key: gateway})
    assert [ref["sectionName"] for ref in named(rendered, "HTTPRoute", "shop")["spec"]["parentRefs"]] == ["exact"]
    assert GatewayListener("w", "HTTPS", 443, "*.example.com").serves("a.b.example.com")
    assert not GatewayListener("w", "HTTPS", 443, "*.example.com").serves("example.com")


@pytest.mark.parametrize("gateway, tls, listeners, message", [
    (facts(HTTPS), TLS, "ListenerSet", "no HTTP listener"),
    (facts(HTTPS), {"enabled": False}, "ListenerSet", "no HTTP listener"),
    (facts(HTTP), {}, "Gateway", "no HTTPS listener"),
    (facts(proxy=None), TLS, "ListenerSet", "fastapi-operator.dev/controller-namespace"),
])
def test_what_the_gateway_lacks_is_said(gateway, tls, listeners, message):
    with pytest.raises(InvalidSpec, match=message):
        render(ingress={"hosts": ["shop.example.com"], "gateway": {"name": "public", "namespace": "infra",
                                                                    "listeners": listeners}},
               tls=tls, gateways={gateway.key: gateway})


def test_a_missing_gateway_is_said():
    with pytest.raises(InvalidSpec, match="Gateway infra/public does not exist"):
        render(gateways={})


def test_the_settings_gateway_serves_apps_that_name_neither_class_nor_gateway():
    settings = Settings(_env_file=None, gateway="infra/public")
    rendered = render(ingress={"hosts": ["shop.example.com"]}, settings=settings)
    assert ("HTTPRoute", "shop") in kinds(rendered) and ("Ingress", "shop") not in kinds(rendered)
    rendered = render(ingress={"hosts": ["shop.example.com"], "className": "traefik"}, settings=settings)
    assert ("Ingress", "shop") in kinds(rendered) and ("HTTPRoute", "shop") not in kinds(rendered)


def test_which_namespaces_a_gateway_lets_listener_sets_come_from():
    assert facts(allowed="All").listener_sets_refusal("web") is None
    assert facts(allowed="Selector").listener_sets_refusal("web") is None  # the controller judges
    assert facts(allowed="Same", namespace="web").listener_sets_refusal("web") is None
    assert "only ListenerSets from its own namespace" in facts(allowed="Same").listener_sets_refusal("web")
    assert "spec.allowedListeners is not set" in facts(allowed="None").listener_sets_refusal("web")


def _route(parents, conditions_by_parent, generation=1):
    return {"kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": "web", "generation": generation},
            "spec": {"parentRefs": parents},
            "status": {"parents": [{"parentRef": p, "conditions": c} for p, c in zip(parents, conditions_by_parent)]}}


def _cond(type_, status="True", reason="Ok", message="", generation=1):
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": generation}


GATEWAY_PARENT = {"kind": "Gateway", "namespace": "infra", "name": "public", "sectionName": "web"}
ACCEPTED = [_cond("Accepted"), _cond("ResolvedRefs")]


def test_ready_needs_every_parent_to_accept_the_route_at_its_current_generation():
    routed = gateway_readiness([_route([GATEWAY_PARENT], [ACCEPTED])], None, own_listeners=False, refusal=None)
    assert routed.status == "True"
    stale = gateway_readiness([_route([GATEWAY_PARENT], [ACCEPTED], generation=2)], None, own_listeners=False,
                              refusal=None)
    assert (stale.status, stale.reason) == ("Unknown", "RoutePending")
    refused = gateway_readiness([_route([GATEWAY_PARENT], [[_cond("Accepted", "False", "NotAllowedByListeners",
                                                                  "hostname mismatch")]])],
                                None, own_listeners=False, refusal=None)
    assert (refused.status, refused.reason) == ("False", "RouteNotAccepted")
    assert "NotAllowedByListeners" in refused.message and "hostname mismatch" in refused.message
    unresolved = gateway_readiness([_route([GATEWAY_PARENT], [[_cond("Accepted"), _cond(
        "ResolvedRefs", "False", "BackendNotFound")]])], None, own_listeners=False, refusal=None)
    assert unresolved.reason == "RouteRefsNotResolved"


def test_ready_needs_the_listener_set_programmed_and_a_refusal_comes_first():
    route = _route([GATEWAY_PARENT], [ACCEPTED])
    listener_set = {"kind": "ListenerSet", "metadata": {"name": "shop", "namespace": "web", "generation": 1}}
    pending = gateway_readiness([route], listener_set, own_listeners=True, refusal=None)
    assert pending.reason == "ListenerPending"
    listener_set["status"] = {"conditions": [_cond("Accepted", "False", "NotAllowed", "namespace not selected")]}
    assert gateway_readiness([route], listener_set, own_listeners=True, refusal=None).reason == "ListenerSetNotAccepted"
    listener_set["status"] = {"conditions": [_cond("Accepted"), _cond("Programmed")]}
    assert gateway_readiness([route], listener_set, own_listeners=True, refusal=None).status == "True"
    refused = gateway_readiness([route], listener_set, own_listeners=True, refusal="not allowed")
    assert (refused.status, refused.reason) == ("False", "ListenerSetsNotAllowed")
