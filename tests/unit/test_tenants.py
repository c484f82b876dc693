"""Tenants cannot touch each other, rendered: shared objects render the same for every app that
shares them, Traefik Middleware references are each app's own, derived names cannot be another
app's, and the shared issuer's name carries 128 bits of what defines it."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fastapi_operator.api import FastAPIApp
from fastapi_operator.errors import InvalidSpec
from fastapi_operator.render import render_app
from fastapi_operator.render.gateway import GatewayFacts, GatewayListener
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from tests.fuzzing import SPECS, manifest

SETTINGS = Settings(_env_file=None, acme_email="ops@example.com", ingress_class="traefik")
_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,12}[a-z0-9]\Z")
MIDDLEWARE_REFS = "traefik.ingress.kubernetes.io/router.middlewares"


def rendered(spec, namespace, name, gateways=None):
    try:
        app = FastAPIApp.model_validate(manifest(spec, namespace, name))
        return render_app(app, SETTINGS, CONVENTIONAL_CLASSES, gateways).every_manifest
    except (ValidationError, InvalidSpec):
        return []


def shared(manifests):
    return {m["metadata"]["name"]: m for m in manifests if "namespace" not in m["metadata"]}


def middleware_refs(manifests):
    return {ref for m in manifests for ref in (m["metadata"].get("annotations") or {}).get(MIDDLEWARE_REFS, "").split(",")
            if ref}


@given(SPECS, SPECS, _names, _names, _names, _names)
def test_two_apps_share_an_object_only_when_they_render_it_the_same_and_never_a_middleware(
        first, second, first_namespace, second_namespace, first_name, second_name):
    if (first_namespace, first_name) == (second_namespace, second_name):
        return
    a, b = rendered(first, first_namespace, first_name), rendered(second, second_namespace, second_name)
    for name in shared(a).keys() & shared(b).keys():
        assert json.dumps(shared(a)[name], sort_keys=True) == json.dumps(shared(b)[name], sort_keys=True), name
    assert not middleware_refs(a) & middleware_refs(b)


def test_apps_whose_names_join_alike_get_their_own_middlewares():
    spec = {"image": "a:1", "ingress": {"hosts": ["pay.example.com"], "path": "/api", "className": "traefik",
                                        "hsts": {"maxAgeSeconds": 600}}}
    first = middleware_refs(rendered(spec, "team", "payments-api"))
    second = middleware_refs(rendered({**spec, "ingress": {**spec["ingress"], "hosts": ["other.example.com"]}},
                                      "team-payments", "api"))
    assert len(first) == len(second) == 3 and not first & second  # strip, HSTS, redirect


def test_a_gateway_issuer_differs_with_what_its_solver_answers_on():
    def gateway(hostname):
        return {("infra", "public"): GatewayFacts("infra", "public", (
            GatewayListener("http-a", "HTTP", 80, "a.example.com"), GatewayListener("http-b", "HTTP", 80, "b.example.com")),
            "All", "infra")}
    spec = {"image": "a:1", "ingress": {"hosts": ["a.example.com"], "gateway": {"name": "public", "namespace": "infra"}},
            "tls": {"acme": {"email": "ops@example.com"}}}
    first = shared(rendered(spec, "team-a", "web", gateway(None)))
    second = shared(rendered({**spec, "ingress": {**spec["ingress"], "hosts": ["b.example.com"]}}, "team-b", "web",
                             gateway(None)))
    assert first and second and first.keys() != second.keys(), "one name, two specs: they would flip forever"


def test_the_shared_issuers_name_carries_128_bits():
    spec = {"image": "a:1", "ingress": {"hosts": ["a.example.com"]}, "tls": {"acme": {"email": "ops@example.com"}}}
    (name,) = shared(rendered(spec, "team", "web"))
    assert re.search(r"-[0-9a-f]{32}$", name), name


def test_no_app_name_can_be_another_apps_derived_name():
    spec = {"image": "a:1", "ingress": {"hosts": ["a.example.com"], "className": "traefik"},
            "tls": {"acme": {"email": "ops@example.com"}}}
    def names_of(name):
        return {(m["kind"], m["metadata"]["name"]) for m in rendered(spec, "team", name) if m["kind"] != "ClusterIssuer"}
    redirect = [name for kind, name in names_of("a") if kind == "Ingress" and name != "a"]
    assert redirect and not names_of(redirect[0].replace(".", "-")) & names_of("a")
    assert "." in redirect[0], "an app's name is a DNS label: a dot keeps derived names out of its reach"


def test_apps_whose_names_join_alike_have_their_own_traefik_backend():
    """Traefik names an Ingress backend `<namespace>-<service>-<port>`."""
    def backends(namespace, name):
        spec = {"image": "a:1", "ingress": {"hosts": [f"{namespace}.example.com"], "className": "traefik"},
                "tls": {"enabled": False}}
        return {f"{namespace}-{path['backend']['service']['name']}-{path['backend']['service']['port'].get('name')}"
                for m in rendered(spec, namespace, name) if m["kind"] == "Ingress"
                for rule in m["spec"]["rules"] for path in rule["http"]["paths"]}
    first, second = backends("team", "payments-api"), backends("team-payments", "api")
    assert first and second and not first & second
