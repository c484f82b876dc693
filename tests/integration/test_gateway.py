"""Gateway API routing against the real API server and the Gateway API's own CRDs (standard
channel): every object the operator renders is accepted, and the app's Ready follows route and
listener conditions, written here as a Gateway controller would write them. The controller name
is this suite's own, so a real Gateway controller (Traefik on the kind tier) leaves them alone."""

from __future__ import annotations

import yaml

from fastapi_operator.kube import CERTIFICATE, CLUSTER_ISSUER, EVENT, HTTP_ROUTE, INGRESS, LISTENER_SET, NETWORK_POLICY
from fastapi_operator.reconcile import Reconciler
from fastapi_operator.settings import Settings
from tests.harness import condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.manifests import app_manifest

CONTROLLER = "fastapi-operator.dev/test-gateway-controller"
PROXY_NAMESPACE = "gateway-proxies"
EMAIL = "ops@example.com"


def gateway(namespace, name="shared", *, allowed_from=None, https_hostname="*.example.com"):
    spec = {
        "gatewayClassName": "test",
        "listeners": [
            {"name": "web", "protocol": "HTTP", "port": 80},
            {"name": "websecure", "protocol": "HTTPS", "port": 443, "hostname": https_hostname,
             "tls": {"mode": "Terminate", "certificateRefs": [{"name": "wildcard"}]}},
        ],
    }
    if allowed_from:
        spec["allowedListeners"] = {"namespaces": {"from": allowed_from}}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"fastapi-operator.dev/controller-namespace": PROXY_NAMESPACE}},
            "spec": spec}


def apply_gateway(cluster, manifest):
    cluster.kubectl("apply", "--server-side", "--field-manager", "platform-team", "-f", "-",
                    stdin=yaml.safe_dump(manifest))


def gateway_app(name, namespace, listeners="ListenerSet", **ingress):
    tls = {"acme": {"email": EMAIL}} if listeners == "ListenerSet" else {}
    return app_manifest(name, namespace, tls=tls, ingress={
        "hosts": [f"{name}.example.com"], "path": "/api",
        "gateway": {"name": "shared", "listeners": listeners}, **ingress})


def _condition(type_, status="True", reason=None, message="", generation=1):
    return {"type": type_, "status": status, "reason": reason or type_, "message": message,
            "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"}


def write_status(cluster, kind, namespace, name, status):
    cluster.kube.request("PATCH", kind.path(namespace, name) + "/status", body={"status": status},
                       content_type="application/merge-patch+json")


def accept_route(cluster, namespace, name, accepted=("True", "Accepted", "")):
    route = cluster.get(HTTP_ROUTE, namespace, name)
    generation = route["metadata"]["generation"]
    status, reason, message = accepted
    write_status(cluster, HTTP_ROUTE, namespace, name, {"parents": [{
        "parentRef": ref, "controllerName": CONTROLLER,
        "conditions": [_condition("Accepted", status, reason, message, generation),
                       _condition("ResolvedRefs", generation=generation)],
    } for ref in route["spec"]["parentRefs"]]})


def program_listener_set(cluster, namespace, name):
    generation = cluster.get(LISTENER_SET, namespace, name)["metadata"]["generation"]
    write_status(cluster, LISTENER_SET, namespace, name, {"conditions": [
        _condition("Accepted", generation=generation), _condition("Programmed", generation=generation)]})


def settled(cluster, namespace, name):
    """A reconcile run here, beside the operator, finds every child exactly as rendered: no write."""
    outcome = Reconciler(cluster.kube, Settings(_env_file=None, **SESSION_SETTINGS)).reconcile(namespace, name)
    assert outcome.error is None and outcome.changes == [], (outcome.error, outcome.changes)


def ready(cluster, namespace, name):
    return condition(cluster.app(namespace, name), "Ready")


def ready_reason_becomes(cluster, namespace, name, reason, timeout=15):
    return eventually(lambda: ready(cluster, namespace, name).get("reason") == reason and ready(cluster, namespace, name),
                      timeout=timeout, message=f"Ready reason {reason}")


def test_an_app_with_its_own_listeners_renders_valid_gateway_objects(cluster, namespace):
    apply_gateway(cluster, gateway(namespace, allowed_from="Same"))
    cluster.apply(gateway_app("shop", namespace, hsts={}))
    route = eventually(lambda: cluster.get(HTTP_ROUTE, namespace, "shop"), message="the app's HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "ListenerSet",
                                            "namespace": namespace, "name": "shop"}]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert {f["type"] for f in rule["filters"]} == {"URLRewrite", "ResponseHeaderModifier"}
    redirect = eventually(lambda: cluster.get(HTTP_ROUTE, namespace, "shop.http-redirect"))
    assert [ref["sectionName"] for ref in redirect["spec"]["parentRefs"]] == ["web"]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}

    listener_set = eventually(lambda: cluster.get(LISTENER_SET, namespace, "shop"))
    (listener,) = listener_set["spec"]["listeners"]
    assert (listener["hostname"], listener["port"], listener["protocol"]) == ("shop.example.com", 443, "HTTPS")
    assert listener["tls"]["certificateRefs"][0]["name"] == "shop.gateway-tls"
    certificate = eventually(lambda: cluster.get(CERTIFICATE, namespace, "shop.gateway-tls"))
    issuer = cluster.get(CLUSTER_ISSUER, None, certificate["spec"]["issuerRef"]["name"])
    solver = issuer["spec"]["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]
    assert solver["parentRefs"][0]["name"] == "shared" and solver["parentRefs"][0]["sectionName"] == "web"
    policy = eventually(lambda: cluster.get(NETWORK_POLICY, namespace, "shop"))
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": PROXY_NAMESPACE}
    assert cluster.get(INGRESS, namespace, "shop") is None
    eventually(lambda: condition(cluster.app(namespace, "shop"), "Reconciled").get("status") == "True")


def test_ready_follows_the_gateways_conditions_and_quotes_a_refusal(cluster, namespace):
    apply_gateway(cluster, gateway(namespace))
    cluster.apply(gateway_app("shop", namespace, listeners="Gateway"))
    eventually(lambda: condition(cluster.app(namespace, "shop"), "Available").get("status") == "True", timeout=90)
    pending = ready_reason_becomes(cluster, namespace, "shop", "RoutePending")
    assert "has not reported" in pending["message"]
    app = cluster.app(namespace, "shop")
    assert condition(app, "CertificateReady")["reason"] == "CertificateAtGateway"
    assert app["status"]["url"] == "https://shop.example.com/api"
    route = cluster.get(HTTP_ROUTE, namespace, "shop")
    assert [ref["sectionName"] for ref in route["spec"]["parentRefs"]] == ["websecure"]
    assert cluster.get(LISTENER_SET, namespace, "shop") is None and cluster.get(CERTIFICATE, namespace, "shop.gateway-tls") is None

    accept_route(cluster, namespace, "shop")
    ready_reason_becomes(cluster, namespace, "shop", "RoutePending")  # the redirect route is not accepted yet
    accept_route(cluster, namespace, "shop.http-redirect")
    eventually(lambda: ready(cluster, namespace, "shop").get("status") == "True", timeout=10,
               message="Ready once both routes are accepted, without a resync (HTTPRoutes are watched)")
    settled(cluster, namespace, "shop")

    accept_route(cluster, namespace, "shop", ("False", "NotAllowedByListeners", "no listener allows this route"))
    refused = ready_reason_becomes(cluster, namespace, "shop", "RouteNotAccepted", timeout=10)
    assert "NotAllowedByListeners" in refused["message"] and "no listener allows this route" in refused["message"]
    events = eventually(lambda: [e for e in cluster.kube.list(EVENT, namespace) if e["reason"] == "RouteNotAccepted"],
                        timeout=10, message="a Warning Event quoting the Gateway")
    assert events[0]["type"] == "Warning" and "NotAllowedByListeners" in events[0]["message"]


def test_a_gateway_that_allows_no_listener_sets_says_what_the_platform_team_must_allow(cluster, namespace):
    apply_gateway(cluster, gateway(namespace))
    cluster.apply(gateway_app("shop", namespace))
    refused = ready_reason_becomes(cluster, namespace, "shop", "ListenerSetsNotAllowed", timeout=90)
    assert "spec.allowedListeners.namespaces.from" in refused["message"], refused
    assert "listeners to Gateway" in refused["message"]
    eventually(lambda: any(e["reason"] == "ListenerSetsNotAllowed" and e["type"] == "Warning"
                           for e in cluster.kube.list(EVENT, namespace)), timeout=10)

    apply_gateway(cluster, gateway(namespace, allowed_from="All"))
    ready_reason_becomes(cluster, namespace, "shop", "ListenerPending", timeout=5)  # the Gateway is watched
    program_listener_set(cluster, namespace, "shop")
    ready_reason_becomes(cluster, namespace, "shop", "RoutePending", timeout=10)
    accept_route(cluster, namespace, "shop")
    accept_route(cluster, namespace, "shop.http-redirect")
    # Routed: what remains is the certificate (no ACME server answers here).
    eventually(lambda: ready(cluster, namespace, "shop").get("reason") == "CertificateNotReady", timeout=10)
    settled(cluster, namespace, "shop")


def test_adding_changing_and_removing_the_gateway_changes_the_children(cluster, namespace):
    apply_gateway(cluster, gateway(namespace, allowed_from="Same"))
    ingress = {"hosts": ["move.example.com"], "path": "/api", "className": "nginx"}
    cluster.apply(app_manifest("move", namespace, tls={"enabled": False}, ingress=ingress))
    eventually(lambda: cluster.get(INGRESS, namespace, "move"), message="the Ingress first")

    # Added: the Ingress goes, the route comes.
    cluster.apply(app_manifest("move", namespace, tls={"enabled": False}, ingress={
        "hosts": ["move.example.com"], "path": "/api", "gateway": {"name": "shared"}}))
    route = eventually(lambda: cluster.get(HTTP_ROUTE, namespace, "move"))
    eventually(lambda: cluster.get(INGRESS, namespace, "move") is None, message="the Ingress deleted")
    assert [ref["sectionName"] for ref in route["spec"]["parentRefs"]] == ["web"]  # plain HTTP
    assert cluster.get(HTTP_ROUTE, namespace, "move.http-redirect") is None

    # Changed: a new path, and HTTPS through the app's own listeners.
    cluster.apply(app_manifest("move", namespace, tls={"acme": {"email": EMAIL}}, ingress={
        "hosts": ["move.example.com"], "path": "/v2", "gateway": {"name": "shared"}}))
    eventually(lambda: (cluster.get(HTTP_ROUTE, namespace, "move") or {}).get("spec", {}).get("rules", [{}])[0]
               .get("matches") == [{"path": {"type": "PathPrefix", "value": "/v2"}}], message="the new path")
    eventually(lambda: cluster.get(LISTENER_SET, namespace, "move") and cluster.get(HTTP_ROUTE, namespace, "move.http-redirect"))
    assert cluster.get(HTTP_ROUTE, namespace, "move")["spec"]["parentRefs"][0]["kind"] == "ListenerSet"

    # Deleted by hand: put back (watched).
    cluster.kubectl("delete", "httproute", "move", "-n", namespace)
    eventually(lambda: cluster.get(HTTP_ROUTE, namespace, "move"), timeout=5, message="the route put back")

    # Removed: no ingress at all, so no route, listener, certificate or policy.
    cluster.apply(app_manifest("move", namespace, tls={"enabled": False}))
    for kind, name in ((HTTP_ROUTE, "move"), (HTTP_ROUTE, "move.http-redirect"), (LISTENER_SET, "move"),
                       (CERTIFICATE, "move.gateway-tls"), (NETWORK_POLICY, "move")):
        eventually(lambda: cluster.get(kind, namespace, name) is None, timeout=10, message=f"{kind.kind} {name} deleted")


def test_a_missing_gateway_is_said_and_its_arrival_is_picked_up(cluster, namespace):
    cluster.apply(gateway_app("early", namespace, listeners="Gateway"))
    reconciled = eventually(lambda: condition(cluster.app(namespace, "early"), "Reconciled").get("reason") == "InvalidSpec"
                            and condition(cluster.app(namespace, "early"), "Reconciled"), timeout=30)
    assert f"Gateway {namespace}/shared does not exist" in reconciled["message"]
    apply_gateway(cluster, gateway(namespace))
    eventually(lambda: cluster.get(HTTP_ROUTE, namespace, "early"), timeout=5, message="routes once the Gateway exists")
