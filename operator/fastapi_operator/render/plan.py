"""Decisions shared by several manifests, made once from the spec and the operator's settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..api import AcmeSpec, FastAPIApp
from ..errors import InvalidSpec
from ..meta import acme_cluster_issuer_name, install_scope
from ..settings import Settings
from .ingress_class import IngressClasses, class_facts, class_name, controller_namespace

ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

# Connections from anywhere but the pod itself: with no Ingress there is no proxy to trust.
NO_PROXY_TRUSTED = "127.0.0.1"


@dataclass(frozen=True)
class Acme:
    server: str
    email: str
    issuer_name: str
    scope: str  # the install that makes and collects the issuer
    ca_bundle: str | None = None


@dataclass(frozen=True)
class Plan:
    ingress_class: str | None
    ingress_flavour: str | None  # "nginx", "traefik" or "plain", from the class's controller
    ingress_namespace: str | None  # where that controller runs: what the NetworkPolicy admits
    tls: bool
    issuer_name: str | None  # the ClusterIssuer the Ingress annotation names
    acme: Acme | None  # set when the operator manages that ClusterIssuer
    forwarded_allow_ips: str
    root_path: str | None  # the prefix, when it is not "/"
    url: str | None

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


def plan_app(app: FastAPIApp, settings: Settings, classes: IngressClasses) -> Plan:
    """`classes`: the cluster's IngressClasses by name (the reconciler lists them)."""
    ingress = app.spec.ingress
    if ingress is None:
        return Plan(None, None, None, False, None, None, NO_PROXY_TRUSTED, None, None)

    ingress_class = class_name(ingress.class_name, settings.ingress_class, classes)
    facts = class_facts(ingress_class, classes)
    tls = app.spec.tls.enabled
    acme = None
    issuer_name = None
    if tls and app.spec.tls.cluster_issuer:
        issuer_name = app.spec.tls.cluster_issuer
    elif tls:
        requested = app.spec.tls.acme
        email = (requested.email if requested else None) or settings.acme_email
        if not email:
            raise InvalidSpec(
                "spec.tls.acme.email is not set and the operator has no default ACME email: "
                "set spec.tls.acme.email, set spec.tls.clusterIssuer to an existing ClusterIssuer, "
                "or set spec.tls.enabled to false"
            )
        scope = install_scope(settings.namespaces)
        directory = acme_directory(requested, settings)
        issuer_name = acme_cluster_issuer_name(directory, email, ingress_class, scope)
        acme = Acme(directory.server, email, issuer_name, scope, directory.ca_bundle)

    root_path = ingress.path if ingress.path != "/" else None
    scheme = "https" if tls else "http"
    return Plan(
        ingress_class=ingress_class,
        ingress_flavour=facts.flavour,
        ingress_namespace=controller_namespace(facts, settings.ingress_namespace),
        tls=tls,
        issuer_name=issuer_name,
        acme=acme,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        root_path=root_path,
        url=f"{scheme}://{ingress.hosts[0]}{root_path or ''}",
    )
