"""The Gateway API on real pods, through Traefik's Gateway provider: HTTPS to the app through the
HTTPRoute the operator made, the prefix stripped, HSTS, and HTTP redirected; cert-manager's http01
challenge answered through the Gateway with the solver the operator renders; Ready taken from the
route status Traefik writes.

Traefik 3.7 implements no ListenerSet, so an app that brings its own listeners is proven here as
far as Traefik goes: its certificate is issued through the Gateway, and Ready says the listener is
not programmed instead of claiming the app is served."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import yaml

from fastapi_operator.api import FastAPIApp
from fastapi_operator.render.gateway import GatewayFacts
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.render.plan import http01_solver
from fastapi_operator.render.plan import plan_app
from fastapi_operator.settings import Settings
from tests.e2e import rig
from tests.e2e.test_user_path import condition, curl, get, kubectl
from tests.harness import eventually

RUN = uuid.uuid4().hex[:6]
GATEWAY = f"public-{RUN}"
GATEWAY_NAMESPACE = "traefik"  # Traefik's proxy runs there too: what the apps' NetworkPolicies admit
HOST = f"gw-{RUN}.{rig.TEST_DOMAIN}"
OWN_HOST = f"own-{RUN}.{rig.TEST_DOMAIN}"
PREFIX = "/api"
SMALL = {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}}


def apply(cluster, *documents: dict) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(documents))


def gateway_manifest() -> dict:
    every_namespace = {"namespaces": {"from": "All"}}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE,
                     "annotations": {"fastapi-operator.dev/controller-namespace": GATEWAY_NAMESPACE}},
        "spec": {
            "gatewayClassName": "traefik",
            "allowedListeners": every_namespace,
            "listeners": [
                {"name": "web", "protocol": "HTTP", "port": 8000, "allowedRoutes": every_namespace},
                {"name": "websecure", "protocol": "HTTPS", "port": 8443, "hostname": HOST,
                 "allowedRoutes": every_namespace,
                 "tls": {"mode": "Terminate", "certificateRefs": [{"name": f"{GATEWAY}-tls"}]}},
            ],
        },
    }


def app_manifest(name: str, namespace: str, host: str, gateway: dict, tls: dict, path: str = PREFIX) -> dict:
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": rig.HELLO_IMAGE, "replicas": 1, "healthPath": "/health", "resources": SMALL,
                 "ingress": {"hosts": [host], "path": path, "gateway": gateway, **(
                     {"hsts": {"maxAgeSeconds": 600}} if tls.get("enabled", True) else {})},
                 "tls": tls},
    }


def platform_certificate(gateway: dict) -> list[dict]:
    """The platform team's side: a certificate for the Gateway's HTTPS listener, from Pebble, through
    a ClusterIssuer whose http01 solver is the very one the operator renders for Gateway apps."""
    facts = GatewayFacts.from_object(gateway)
    probe = FastAPIApp.model_validate(app_manifest("probe", "default", HOST, {
        "name": GATEWAY, "namespace": GATEWAY_NAMESPACE}, {"acme": {"email": "ops@example.com"}}))
    plan = plan_app(probe, Settings(_env_file=None), CONVENTIONAL_CLASSES, {facts.key: facts})
    ca_bundle = base64.b64encode((rig.CACHE / "cluster" / "pebble-ca.crt").read_bytes()).decode()
    issuer_name = f"e2e-platform-{RUN}"
    return [
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": issuer_name},
         "spec": {"acme": {"server": rig.PEBBLE_DIRECTORY, "caBundle": ca_bundle, "email": "platform@example.com",
                           "privateKeySecretRef": {"name": issuer_name}, "solvers": [{"http01": http01_solver(plan.ingress_class, plan.gateway)}]}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
         "metadata": {"name": f"{GATEWAY}-tls", "namespace": GATEWAY_NAMESPACE},
         "spec": {"secretName": f"{GATEWAY}-tls", "dnsNames": [HOST],
                  "issuerRef": {"kind": "ClusterIssuer", "name": issuer_name}}},
    ]


@pytest.fixture(scope="module")
def gateway_namespace(kind_cluster):
    namespace = f"e2e-gw-{RUN}"
    kubectl(kind_cluster, "create", "namespace", namespace)
    gateway = gateway_manifest()
    apply(kind_cluster, gateway)
    apply(kind_cluster, *platform_certificate(gateway))
    yield namespace
    kubectl(kind_cluster, "delete", "gateway", GATEWAY, "-n", GATEWAY_NAMESPACE, "--wait=false", check=False)
    kubectl(kind_cluster, "delete", "certificate", f"{GATEWAY}-tls", "-n", GATEWAY_NAMESPACE, "--wait=false", check=False)
    kubectl(kind_cluster, "delete", "clusterissuer", f"e2e-platform-{RUN}", "--wait=false", check=False)


@pytest.fixture(scope="module")
def ready_app(kind_cluster, gateway_namespace, pebble_root, report):
    apply(kind_cluster, app_manifest("hello", gateway_namespace, HOST,
                                     {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE, "listeners": "Gateway"},
                                     {"enabled": True}))
    app = eventually(lambda: condition(get(kind_cluster, "fapp", "hello", gateway_namespace) or {}, "Ready")
                     .get("status") == "True" and get(kind_cluster, "fapp", "hello", gateway_namespace),
                     timeout=300, interval=2, message="Ready: routes accepted by Traefik, pod available")

    def serving() -> bool:  # the listener's certificate is the platform's, issued through the Gateway
        try:
            return curl(kind_cluster, f"{PREFIX}/echo", ca=pebble_root, host=HOST)[0] == 200
        except AssertionError as error:
            assert "certificate" in str(error) or "SSL" in str(error), error
            return False
    eventually(serving, timeout=180, interval=2, message="HTTPS through the Gateway with Pebble's certificate")
    return app


def test_https_through_the_httproute_reaches_the_app_with_the_prefix_stripped(
        kind_cluster, gateway_namespace, ready_app, pebble_root):
    assert condition(ready_app, "CertificateReady")["reason"] == "CertificateAtGateway"
    status, headers, body = curl(kind_cluster, f"{PREFIX}/echo", ca=pebble_root, host=HOST)
    assert status == 200
    echo = json.loads(body)
    assert echo["scheme"] == "https" and echo["root_path"] == PREFIX
    assert echo["url"] == f"https://{HOST}:{rig.HTTPS_PORT}{PREFIX}/echo"
    assert headers.get("strict-transport-security") == "max-age=600"
    status, _, docs = curl(kind_cluster, f"{PREFIX}/docs", ca=pebble_root, host=HOST)
    assert status == 200 and f"url: '{PREFIX}/openapi.json'" in docs
    for near_miss in (f"{PREFIX}x/echo", "/echo"):
        assert curl(kind_cluster, near_miss, ca=pebble_root, host=HOST)[0] == 404, f"{near_miss} reached the app"
    route = get(kind_cluster, "httproute", "hello", gateway_namespace)
    (parent,) = route["status"]["parents"]
    assert parent["controllerName"] == "traefik.io/gateway-controller"


def test_plain_http_is_redirected_to_https(kind_cluster, ready_app):
    status, headers, _ = curl(kind_cluster, f"{PREFIX}/echo", scheme="http", host=HOST)
    assert status == 301
    assert headers["location"].startswith(f"https://{HOST}") and headers["location"].endswith(f"{PREFIX}/echo")
    assert "strict-transport-security" not in headers


def test_a_host_the_gateway_does_not_serve_is_said_before_anything_is_made(kind_cluster, gateway_namespace, ready_app):
    other = f"other-{RUN}.{rig.TEST_DOMAIN}"
    apply(kind_cluster, app_manifest("other", gateway_namespace, other,
                                     {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE, "listeners": "Gateway"},
                                     {"enabled": True}))
    reconciled = eventually(lambda: condition(get(kind_cluster, "fapp", "other", gateway_namespace) or {}, "Reconciled")
                            .get("reason") == "InvalidSpec"
                            and condition(get(kind_cluster, "fapp", "other", gateway_namespace), "Reconciled"),
                            timeout=60, interval=1, message="InvalidSpec: no HTTPS listener for the host")
    assert "no HTTPS listener" in reconciled["message"] and other in reconciled["message"], reconciled
    assert get(kind_cluster, "httproute", "other", gateway_namespace) is None


def test_own_listeners_get_a_certificate_through_the_gateway_and_ready_says_traefik_does_not_program_them(
        kind_cluster, gateway_namespace, report):
    apply(kind_cluster, app_manifest("own", gateway_namespace, OWN_HOST, {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE},
                                     {}, path="/"))
    certificate = eventually(
        lambda: condition(get(kind_cluster, "certificate", "own.gateway-tls", gateway_namespace) or {}, "Ready")
        .get("status") == "True" and get(kind_cluster, "certificate", "own.gateway-tls", gateway_namespace),
        timeout=240, interval=2, message="the operator's Certificate issued by Pebble through the Gateway")
    assert certificate["spec"]["dnsNames"] == [OWN_HOST]
    app = eventually(lambda: condition(get(kind_cluster, "fapp", "own", gateway_namespace) or {}, "CertificateReady")
                     .get("status") == "True" and get(kind_cluster, "fapp", "own", gateway_namespace), timeout=30)
    ready = condition(app, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ListenerPending"), ready
    assert "ListenerSet" in ready["message"]
