"""The IngressClass, as the API holds it, decides the flavour and the admitted namespace; a change
to a class reaches the apps that use it in seconds (it is watched)."""

from __future__ import annotations

import yaml

from fastapi_operator.meta import strip_prefix_middleware_name
from fastapi_operator.kube import INGRESS, MIDDLEWARE, NETWORK_POLICY
from tests.harness import condition, eventually
from tests.manifests import app_manifest


def admitted(cluster, namespace, name):
    policy = cluster.get(NETWORK_POLICY, namespace, name)
    return policy and policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"][
        "kubernetes.io/metadata.name"]


def test_two_controllers_each_admit_their_own_namespace(cluster, namespace):
    for name, class_name in (("a", "nginx"), ("b", "traefik")):
        cluster.apply(app_manifest(name, namespace, ingress={"hosts": [f"{name}.{namespace}.example.com"],
                                                             "path": "/api", "className": class_name},
                                   tls={"enabled": False}))
    eventually(lambda: admitted(cluster, namespace, "a") == "ingress-nginx", message="nginx app admits ingress-nginx")
    eventually(lambda: admitted(cluster, namespace, "b") == "traefik", message="traefik app admits traefik")
    assert cluster.get(MIDDLEWARE, namespace, strip_prefix_middleware_name(namespace, "b")) and not cluster.get(MIDDLEWARE, namespace, strip_prefix_middleware_name(namespace, "a"))


def test_a_class_without_a_namespace_is_said_and_its_annotation_is_picked_up_in_seconds(cluster, namespace):
    class_name = f"edge-{namespace}"
    ingress_class = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                     "metadata": {"name": class_name}, "spec": {"controller": "traefik.io/ingress-controller"}}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(ingress_class))
    try:
        cluster.apply(app_manifest("edge", namespace, ingress={"hosts": [f"edge.{namespace}.example.com"],
                                                               "className": class_name}, tls={"enabled": False}))
        reconciled = eventually(lambda: condition(cluster.app(namespace, "edge"), "Reconciled").get("reason")
                                == "InvalidSpec" and condition(cluster.app(namespace, "edge"), "Reconciled"),
                                message="InvalidSpec while the namespace is unknown")
        assert "fastapi-operator.dev/controller-namespace" in reconciled["message"], reconciled
        assert cluster.get(INGRESS, namespace, "edge") is None, "something was made while the namespace was unknown"

        ingress_class["metadata"]["annotations"] = {"fastapi-operator.dev/controller-namespace": "edge-proxies"}
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(ingress_class))
        eventually(lambda: admitted(cluster, namespace, "edge") == "edge-proxies", timeout=5,
                   message="the annotated namespace admitted, without waiting for a resync")
        eventually(lambda: condition(cluster.app(namespace, "edge"), "Reconciled").get("status") == "True", timeout=5)
    finally:
        cluster.kubectl("delete", "ingressclass", class_name, check=False)
    reconciled = eventually(lambda: condition(cluster.app(namespace, "edge"), "Reconciled").get("reason")
                            == "InvalidSpec" and condition(cluster.app(namespace, "edge"), "Reconciled"), timeout=5,
                            message="InvalidSpec once the class is gone")
    assert "does not exist" in reconciled["message"]
