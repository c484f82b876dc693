"""Tenants cannot touch each other, on the API: a host claim and an issuer stay while an app the
model refuses still uses them, the shared issuer is the operator's alone, and names derived from
one app's name are never another app's."""

from __future__ import annotations

import base64
import json
import time

from fastapi_operator.kube import CERTIFICATE, CLUSTER_ISSUER, HOST_CLAIM, INGRESS
from tests.harness import condition, eventually
from tests.integration.test_convergence import reconciled_at
from tests.integration.test_shared_objects import issuer_of, second_namespace  # noqa: F401 (fixture)
from tests.manifests import app_manifest, namespace_host

NOT_PEM = base64.b64encode(b"base64, but no certificate in it").decode()


def reason(cluster, namespace, name):
    return condition(cluster.app(namespace, name), "Reconciled").get("reason")


def test_an_app_the_model_refuses_keeps_its_host_claim_and_issuer(cluster, namespace, second_namespace):  # noqa: F811
    host = namespace_host(namespace)
    manifest = app_manifest("kept", namespace, ingress={"hosts": [host]}, tls={"acme": {"email": "ops@example.com"}})
    cluster.apply(manifest, app_manifest("passing", namespace))
    eventually(lambda: reconciled_at(cluster, namespace, "kept", 1) and reconciled_at(cluster, namespace, "passing", 1))
    issuer = issuer_of(cluster, namespace, "kept")

    # The schema checks the pattern only; the model refuses a bundle that is not PEM.
    manifest["spec"]["tls"]["acme"]["caBundle"] = NOT_PEM
    cluster.apply(manifest)
    eventually(lambda: reason(cluster, namespace, "kept") == "InvalidSpec", message="InvalidSpec")
    cluster.kubectl("delete", "fapp", "passing", "-n", namespace)  # an app deleted: a collection runs
    time.sleep(3)
    assert cluster.get(HOST_CLAIM, None, host) is not None, "the claim went while the app's Ingress serves the host"
    assert cluster.get(CLUSTER_ISSUER, None, issuer) is not None, "the issuer went while the app's Ingress names it"
    assert cluster.get(INGRESS, namespace, "kept") is not None

    cluster.apply(app_manifest("taker", second_namespace, ingress={"hosts": [host]}, tls={"enabled": False}))
    eventually(lambda: reason(cluster, second_namespace, "taker") == "Conflict", message="the host is still taken")
    assert cluster.get(INGRESS, second_namespace, "taker") is None


def test_a_hand_edit_of_the_shared_issuer_is_reverted(cluster, namespace):
    # An email of its own: an issuer no other test's app shares, so this app reverts it and says so.
    cluster.apply(app_manifest("guarded", namespace, ingress={"hosts": [namespace_host(namespace)]},
                               tls={"acme": {"email": f"ops@{namespace}.example.com"}}))
    eventually(lambda: reconciled_at(cluster, namespace, "guarded", 1))
    issuer = issuer_of(cluster, namespace, "guarded")
    cluster.kubectl("patch", "clusterissuer", issuer, "--type", "merge",
                    "-p", json.dumps({"spec": {"acme": {"skipTLSVerify": True}}}))
    eventually(lambda: "skipTLSVerify" not in cluster.get(CLUSTER_ISSUER, None, issuer)["spec"]["acme"], timeout=30,
               message="skipTLSVerify reverted")
    # Every app using the issuer is queued; whichever reconciles first reverts it and says so.
    def reverted_events():
        listed = cluster.kubectl("get", "events", "-A", "--field-selector", "reason=Reverted", "-o", "json").stdout
        return [e for e in json.loads(listed)["items"] if issuer in e["message"]]
    eventually(reverted_events, timeout=30, message="a Reverted Event names the issuer")


def test_an_app_named_like_anothers_derived_name_takes_nothing_of_it(cluster, namespace):
    for name in ("a", "a-http-redirect", "x", "x-gateway"):
        cluster.apply(app_manifest(name, namespace, ingress={"hosts": [f"{name}.{namespace_host(namespace)}"],
                                                             "className": "traefik"},
                                   tls={"acme": {"email": "ops@example.com"}}))
    for name in ("a", "a-http-redirect", "x", "x-gateway"):
        eventually(lambda name=name: reconciled_at(cluster, namespace, name, 1), timeout=60,
                   message=f"{name} reconciled")


def test_two_tenants_on_one_gateway_with_their_own_http_listeners_do_not_share_a_flipping_issuer(
        cluster, namespace, second_namespace):  # noqa: F811
    from tests.integration.test_gateway import apply_gateway, gateway

    shared = gateway(namespace, "tenants")
    shared["spec"]["allowedListeners"] = {"namespaces": {"from": "All"}}
    shared["spec"]["listeners"] = [
        {"name": "http-a", "protocol": "HTTP", "port": 80, "hostname": "a.tenants.example.com"},
        {"name": "http-b", "protocol": "HTTP", "port": 80, "hostname": "b.tenants.example.com"}]
    apply_gateway(cluster, shared)
    for host, ns in (("a.tenants.example.com", namespace), ("b.tenants.example.com", second_namespace)):
        cluster.apply(app_manifest("web", ns, tls={"acme": {"email": "ops@example.com"}}, ingress={
            "hosts": [host], "gateway": {"name": "tenants", "namespace": namespace, "listeners": "ListenerSet"}}))

    def issuer_names():
        certificates = [cluster.kube.list(CERTIFICATE, ns) for ns in (namespace, second_namespace)]
        return [c["spec"]["issuerRef"]["name"] for listed in certificates for c in listed]
    first, second = eventually(lambda: len(issuer_names()) == 2 and issuer_names(), message="both certificates")
    assert first != second, "one issuer name for two http01 solvers: each reconcile would rewrite the other's"
    # The spec's generation: cert-manager writes the status (the ACME account) on its own.
    versions = {name: cluster.get(CLUSTER_ISSUER, None, name)["metadata"]["generation"] for name in (first, second)}
    time.sleep(5)
    assert versions == {name: cluster.get(CLUSTER_ISSUER, None, name)["metadata"]["generation"]
                        for name in (first, second)}, "a shared issuer was rewritten"
