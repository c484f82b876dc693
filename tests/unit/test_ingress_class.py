"""The IngressClass decides: its controller picks the flavour of Ingress, its annotation the
namespace the NetworkPolicy admits, and the cluster's default serves apps that name no class."""

from __future__ import annotations

import pytest

from fastapi_operator.errors import InvalidSpec
from fastapi_operator.render.ingress_class import IngressClassFacts
from fastapi_operator.meta import tls_secret_name
from tests.unit.conftest import by_kind, one

NGINX = "k8s.io/ingress-nginx"
TRAEFIK = "traefik.io/ingress-controller"
INGRESS = {"hosts": ["hello.example.com"], "path": "/api"}
TLS = {"acme": {"email": "ops@example.com"}}


def classes(*facts: IngressClassFacts) -> dict[str, IngressClassFacts]:
    return {f.name: f for f in facts}


def admitted(rendered) -> str:
    policy = one(rendered, "NetworkPolicy")
    return policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]


def test_the_flavour_follows_the_controller_not_the_name(render, settings):
    cluster = classes(IngressClassFacts("public", TRAEFIK, "edge"), IngressClassFacts("traefik", NGINX, "ingress-nginx"))
    rendered = render(ingress={**INGRESS, "className": "public"}, tls=TLS, classes=cluster)
    assert by_kind(rendered, "Middleware"), "a Traefik class got no Middlewares"
    assert admitted(rendered) == "edge"
    rendered = render(ingress={**INGRESS, "className": "traefik"}, tls=TLS, classes=cluster)
    assert not by_kind(rendered, "Middleware")
    assert one(rendered, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"


def test_two_controllers_each_admit_their_own_namespace(render):
    cluster = classes(IngressClassFacts("nginx", NGINX, "ingress-nginx"), IngressClassFacts("traefik", TRAEFIK, "traefik"))
    assert admitted(render(ingress={**INGRESS, "className": "nginx"}, tls=TLS, classes=cluster)) == "ingress-nginx"
    assert admitted(render(ingress={**INGRESS, "className": "traefik"}, tls=TLS, classes=cluster)) == "traefik"


def test_without_a_class_the_clusters_default_serves(render, settings):
    cluster = classes(IngressClassFacts("nginx", NGINX, "ingress-nginx"),
                      IngressClassFacts("edge", TRAEFIK, "traefik", is_default=True))
    rendered = render(ingress=INGRESS, tls=TLS, classes=cluster, settings_=settings.model_copy(update={"ingress_class": None}))
    assert one(rendered, "Deployment")
    assert {i["spec"]["ingressClassName"] for i in by_kind(rendered, "Ingress")} == {"edge"}


@pytest.mark.parametrize("cluster, message", [
    (classes(IngressClassFacts("nginx", NGINX, "ingress-nginx")), "no default IngressClass"),
    (classes(IngressClassFacts("a", NGINX, "x", is_default=True), IngressClassFacts("b", TRAEFIK, "y", is_default=True)),
     "several IngressClasses"),
])
def test_no_single_default_class_is_an_invalid_spec_that_says_what_to_set(render, settings, cluster, message):
    with pytest.raises(InvalidSpec, match=message):
        render(ingress=INGRESS, tls=TLS, classes=cluster, settings_=settings.model_copy(update={"ingress_class": None}))


def test_a_class_that_does_not_exist_is_named(render):
    with pytest.raises(InvalidSpec, match="IngressClass 'haproxy' does not exist"):
        render(ingress={**INGRESS, "className": "haproxy"}, tls=TLS,
               classes=classes(IngressClassFacts("nginx", NGINX, "ingress-nginx")))


def test_an_unknown_namespace_is_said_not_guessed(render, settings):
    cluster = classes(IngressClassFacts("nginx", NGINX, None))
    with pytest.raises(InvalidSpec, match="controller-namespace"):
        render(ingress=INGRESS, tls=TLS, classes=cluster)
    rendered = render(ingress=INGRESS, tls=TLS, classes=cluster,
                      settings_=settings.model_copy(update={"ingress_namespace": "ingress-nginx"}))
    assert admitted(rendered) == "ingress-nginx"


def test_an_unknown_controller_gets_a_plain_ingress(render):
    cluster = classes(IngressClassFacts("haproxy", "haproxy.org/ingress-controller", "haproxy"))
    rendered = render(ingress={**INGRESS, "className": "haproxy", "hsts": {}}, tls=TLS, classes=cluster)
    (ingress,) = by_kind(rendered, "Ingress")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": ingress["metadata"]["annotations"][
        "cert-manager.io/cluster-issuer"]}
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/api"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"
    assert ingress["spec"]["tls"][0]["secretName"] == tls_secret_name("shop", "hello")
    assert not by_kind(rendered, "Middleware")
    command = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--root-path") + 1] == "/api"


def test_facts_are_read_from_the_ingress_class_object():
    facts = IngressClassFacts.from_object({
        "metadata": {"name": "traefik", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true",
                                                         "fastapi-operator.dev/controller-namespace": "edge"}},
        "spec": {"controller": TRAEFIK}})
    assert facts == IngressClassFacts("traefik", TRAEFIK, "edge", is_default=True)
    assert facts.flavour == "traefik"
