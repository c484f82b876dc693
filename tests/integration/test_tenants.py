"""Tenants cannot touch each other, on the API: a host claim and an issuer stay while an app the
model refuses still uses them, the shared issuer is the operator's alone, and names derived from
one app's name are never another app's."""

from __future__ import annotations

import base64
import json
import time

from fastapi_operator.kube import CLUSTER_ISSUER, HOST_CLAIM, INGRESS
from tests.harness import condition, eventually
from tests.integration.test_convergence import events, reconciled_at
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
    cluster.apply(app_manifest("guarded", namespace, ingress={"hosts": [namespace_host(namespace)]},
                               tls={"acme": {"email": "ops@example.com"}}))
    eventually(lambda: reconciled_at(cluster, namespace, "guarded", 1))
    issuer = issuer_of(cluster, namespace, "guarded")
    cluster.kubectl("patch", "clusterissuer", issuer, "--type", "merge",
                    "-p", json.dumps({"spec": {"acme": {"skipTLSVerify": True}}}))
    eventually(lambda: "skipTLSVerify" not in cluster.get(CLUSTER_ISSUER, None, issuer)["spec"]["acme"], timeout=30,
               message="skipTLSVerify reverted")
    eventually(lambda: [e for e in events(cluster, namespace, "Reverted") if issuer in e["message"]], timeout=10,
               message="a Reverted Event names the issuer")


def test_an_app_named_like_anothers_derived_name_takes_nothing_of_it(cluster, namespace):
    for name in ("a", "a-http-redirect", "x", "x-gateway"):
        cluster.apply(app_manifest(name, namespace, ingress={"hosts": [f"{name}.{namespace_host(namespace)}"],
                                                             "className": "traefik"},
                                   tls={"acme": {"email": "ops@example.com"}}))
    for name in ("a", "a-http-redirect", "x", "x-gateway"):
        eventually(lambda name=name: reconciled_at(cluster, namespace, name, 1), timeout=60,
                   message=f"{name} reconciled")
