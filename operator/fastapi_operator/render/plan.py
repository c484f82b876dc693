"""Decisions shared by several manifests, made once from the spec and the operator's settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..api import AcmeSpec, FastAPIApp
from ..errors import InvalidSpec
from ..meta import acme_cluster_issuer_name, install_scope
from ..settings import Settings
from .gateway import (
    GATEWAY_API_GROUP, HTTP, HTTPS, GatewayFacts, Gateways, assumed_gateway, gateway_facts, proxy_namespace, requested_gateway,
    uses_own_listeners,
)
from .ingress_class import IngressClasses, class_facts, class_name, controller_namespace

ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

# Connections from anywhere but the pod itself: with no Ingress there is no proxy to trust.
NO_PROXY_TRUSTED = "127.0.0.1"

# How long each proxy keeps an idle connection to the app for reuse: Traefik's serversTransport
# idleConnTimeout, ingress-nginx's upstream-keepalive-timeout; Envoy (most Gateway
# implementations) and unknown controllers: an hour. The app must keep its side open longer, or the
# proxy sends a request on a connection the app is closing and answers 502.
PROXY_IDLE_SECONDS = {"traefik": 90, "nginx": 60}
UNKNOWN_PROXY_IDLE_SECONDS = 3600
KEEP_ALIVE_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Acme:
    server: str
    email: str
    issuer_name: str
    scope: str  # the install that makes and collects the issuer
    ca_bundle: str | None = None
    solver: dict[str, Any] = field(default_factory=dict)  # how its http01 challenges are answered


@dataclass(frozen=True)
class GatewayRoute:
    facts: GatewayFacts
    own_listeners: bool  # the app's HTTPS listeners in its ListenerSet, rather than the Gateway's
    http_sections: tuple[str, ...]  # the Gateway's HTTP listeners for the app's hosts
    https_sections: tuple[str, ...]  # its HTTPS listeners for them, used unless own_listeners

    def parent_refs(self, sections: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "namespace": self.facts.namespace,
                 "name": self.facts.name, "sectionName": section} for section in sections]


def http01_solver(ingress_class: str | None, gateway: GatewayRoute | None) -> dict[str, Any]:
    """cert-manager answers challenges the way the app is reached: a temporary Ingress of the app's
    class, or a temporary HTTPRoute on the Gateway's HTTP listeners."""
    if gateway is not None:
        return {"gatewayHTTPRoute": {"parentRefs": gateway.parent_refs(gateway.http_sections)}}
    return {"ingress": {"ingressClassName": ingress_class}}


@dataclass(frozen=True)
class Plan:
    ingress_class: str | None
    ingress_flavour: str | None  # "nginx", "traefik" or "plain", from the class's controller
    ingress_namespace: str | None  # where that controller (or the Gateway's proxy) runs: what the NetworkPolicy admits
    tls: bool
    issuer_name: str | None  # the ClusterIssuer the Ingress annotation names
    acme: Acme | None  # set when the operator manages that ClusterIssuer
    forwarded_allow_ips: str
    root_path: str | None  # the prefix, when it is not "/"
    url: str | None
    gateway: GatewayRoute | None = None  # set when the app is routed through the Gateway API
    keep_alive_seconds: int | None = None  # the server's idle keep-alive; None: uvicorn's own
    monitoring_namespace: str | None = None  # where Prometheus runs: what the NetworkPolicy admits to the metrics

    @property
    def referenced_issuer(self) -> str | None:
        """A ClusterIssuer the user named, which must exist and is never edited."""
        return self.issuer_name if self.acme is None else None


@dataclass(frozen=True)
class AcmeDirectory:
    server: str
    ca_bundle: str | None
    environment: str | None  # the Let's Encrypt environment, when it is one


def acme_directory(requested: AcmeSpec | None, settings: Settings) -> AcmeDirectory:
    """The spec's choice first (an environment or a server), then the settings' server, then the
    settings' Let's Encrypt environment. The CA bundle follows the same order."""
    ca_bundle = (requested.ca_bundle if requested else None) or settings.acme_ca_bundle
    environment = requested.environment if requested else None
    server = requested.server if requested else None
    if environment is None and server is None:
        server = settings.acme_server
        environment = None if server else settings.acme_environment
    if environment is not None:
        return AcmeDirectory(ACME_SERVERS[environment], ca_bundle, environment)
    assert server is not None
    return AcmeDirectory(server, ca_bundle, None)


def gateway_route(app: FastAPIApp, settings: Settings, gateways: Gateways | None) -> GatewayRoute | None:
    """`gateways`: the Gateways the reconciler read, by (namespace, name); None assumes a
    conventional one (`fastapi-operator render`)."""
    requested = requested_gateway(app, settings)
    if requested is None:
        return None
    key, ref = requested
    facts = assumed_gateway(*key) if gateways is None else gateway_facts(key, gateways)
    assert app.spec.ingress is not None
    hosts = list(app.spec.ingress.hosts)
    route = GatewayRoute(facts, uses_own_listeners(ref) and app.spec.tls.enabled,
                         facts.sections(HTTP, hosts), facts.sections(HTTPS, hosts))
    for_hosts = f"for {', '.join(hosts)}"
    if not app.spec.tls.enabled and not route.http_sections:
        raise InvalidSpec(f"{facts.description} has no HTTP listener {for_hosts}, which an app with "
                          f"spec.tls.enabled false is served on: the platform team must add one")
    if route.own_listeners and not route.http_sections:
        raise InvalidSpec(f"{facts.description} has no HTTP listener {for_hosts}, which the HTTP-to-HTTPS redirect "
                          f"and cert-manager's http01 challenges need: the platform team must add one")
    if app.spec.tls.enabled and not route.own_listeners and not route.https_sections:
        raise InvalidSpec(f"{facts.description} has no HTTPS listener {for_hosts}: the platform team must add one, "
                          f"or set spec.ingress.gateway.listeners to ListenerSet to bring the app's own")
    return route


def monitoring_namespace(app: FastAPIApp, settings: Settings) -> str | None:
    """The namespace the NetworkPolicy admits to the metrics port, for an app with an ingress (and
    so a NetworkPolicy) and spec.metrics; without it nothing could scrape the app, so it is refused."""
    if app.spec.metrics is None:
        return None
    if settings.monitoring_namespace is None:
        raise InvalidSpec(
            "spec.metrics: the app's NetworkPolicy admits only its ingress controller, so Prometheus could not "
            "scrape it: set the operator's monitoring_namespace (chart value operator.monitoringNamespace) to "
            "the namespace Prometheus runs in, or remove spec.metrics")
    return settings.monitoring_namespace


def certificate_issuer(app: FastAPIApp, settings: Settings, ingress_class: str | None,
                       gateway: GatewayRoute | None) -> tuple[str | None, Acme | None]:
    """The ClusterIssuer the app's certificate comes from, and the shared ACME issuer to make for it
    (None: the spec names its own ClusterIssuer, TLS is off, or the Gateway's listeners hold it)."""
    tls = app.spec.tls
    if not tls.enabled or (gateway is not None and not gateway.own_listeners):
        return None, None
    if tls.cluster_issuer:
        return tls.cluster_issuer, None
    requested = tls.acme
    email = (requested.email if requested else None) or settings.acme_email
    if not email:
        raise InvalidSpec(
            "spec.tls.acme.email is not set and the operator has no default ACME email: "
            "set spec.tls.acme.email, set spec.tls.clusterIssuer to an existing ClusterIssuer, "
            "or set spec.tls.enabled to false"
        )
    scope = install_scope(settings.namespaces)
    directory = acme_directory(requested, settings)
    solver = http01_solver(ingress_class, gateway)
    issuer_name = acme_cluster_issuer_name(directory, email, json.dumps(solver, sort_keys=True), scope)
    return issuer_name, Acme(directory.server, email, issuer_name, scope, directory.ca_bundle, solver)


def plan_app(app: FastAPIApp, settings: Settings, classes: IngressClasses, gateways: Gateways | None = None) -> Plan:
    """`classes`: the cluster's IngressClasses by name (the reconciler lists them)."""
    ingress = app.spec.ingress
    if ingress is None:
        return Plan(None, None, None, False, None, None, NO_PROXY_TRUSTED, None, None,
                    keep_alive_seconds=app.spec.keep_alive_seconds)

    gateway = gateway_route(app, settings, gateways)
    if gateway is None:
        ingress_class: str | None = class_name(ingress.class_name, settings.ingress_class, classes)
        facts = class_facts(ingress_class, classes)
        flavour: str | None = facts.flavour
        admitted = controller_namespace(facts, settings.ingress_namespace)
    else:
        ingress_class = flavour = None
        admitted = proxy_namespace(gateway.facts)
    tls = app.spec.tls.enabled
    issuer_name, acme = certificate_issuer(app, settings, ingress_class, gateway)

    monitoring = monitoring_namespace(app, settings)
    root_path = ingress.path if ingress.path != "/" else None
    scheme = "https" if tls else "http"
    return Plan(
        ingress_class=ingress_class,
        ingress_flavour=flavour,
        ingress_namespace=admitted,
        tls=tls,
        issuer_name=issuer_name,
        acme=acme,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        root_path=root_path,
        url=f"{scheme}://{ingress.hosts[0]}{root_path or ''}",
        gateway=gateway,
        keep_alive_seconds=app.spec.keep_alive_seconds or (
            PROXY_IDLE_SECONDS.get(flavour or "", UNKNOWN_PROXY_IDLE_SECONDS) + KEEP_ALIVE_MARGIN_SECONDS),
        monitoring_namespace=monitoring,
    )
