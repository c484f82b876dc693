"""Names, labels and annotation keys the operator puts on what it makes: one home for each."""

from __future__ import annotations

import hashlib
from typing import Protocol

from .api import API_VERSION, KIND

OPERATOR_NAME = "fastapi-operator"
FIELD_MANAGER = OPERATOR_NAME
# Shares spec.replicas with the operator for one moment, so that the operator can stop setting
# it without server-side apply resetting it to 1 before the autoscaler takes over (the
# ownership-transfer recipe of the Kubernetes server-side apply docs).
AUTOSCALER_HANDOFF_FIELD_MANAGER = f"{OPERATOR_NAME}-autoscaler-handoff"
# Sets a schedule's CronJob's spec.suspend while a migration runs, and only that field: the
# operator's own applies never set it, so a user may suspend a schedule by hand, as they may
# pause a Deployment, and the gate resumes only what it suspended.
MIGRATION_GATE_FIELD_MANAGER = f"{OPERATOR_NAME}-migration-gate"

from .labels import (  # noqa: F401 (re-exported)
    LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_SCHEDULE, LABEL_WORKER,
)
# Which install made a cluster-scoped object: "cluster", or "ns-<hash>" of a namespace-restricted
# install's namespaces. An install only ever collects objects of its own scope.
LABEL_SCOPE = f"{API_VERSION.split('/')[0]}/scope"
ANNOTATION_CLAIMED_BY = f"{API_VERSION.split('/')[0]}/claimed-by"
# On an IngressClass, by the platform team: the namespace its controller's pods run in.
ANNOTATION_CONTROLLER_NAMESPACE = f"{API_VERSION.split('/')[0]}/controller-namespace"

CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"

# Pod Security "restricted" forbids root; images built from FastAPI's recommended Dockerfile
# have no USER line, so a fixed non-root UID is the default that works for them.
DEFAULT_RUN_AS_USER = 10001


def selector_labels(app_name: str) -> dict[str, str]:
    """The labels that select an app's pods. Never change them: Deployment selectors are immutable."""
    return {LABEL_INSTANCE: app_name, LABEL_NAME: app_name}


def child_labels(app_name: str) -> dict[str, str]:
    return {**selector_labels(app_name), LABEL_MANAGED_BY: OPERATOR_NAME}


def selector_string(app_name: str) -> str:
    return ",".join(f"{key}={value}" for key, value in selector_labels(app_name).items())


def owner_reference(app_name: str, app_uid: str) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": app_name,
        "uid": app_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def tls_secret_name(namespace: str, app_name: str) -> str:
    """The Secret cert-manager fills for the app's Ingress (and its Certificate's name). Traefik
    keys an Ingress's TLS certificate by `<namespace>-<secret>`: with `<app>-tls`,
    `team/payments-api` and `team-payments/api` had one key, and one tenant's host was served the
    other's certificate (the kind tier's two-tenant test caught it)."""
    return f"{app_name}-{app_digest(namespace, app_name)[:10]}-tls"


def app_digest(namespace: str, app_name: str) -> str:
    """80 bits of the app's namespace and name. Traefik resolves a Middleware as
    `<namespace>-<name>@kubernetescrd`, so `team/payments-api-x` and `team-payments/api-x` would
    name the same one: the digest keeps each app's reference its own."""
    return hashlib.sha256(f"{namespace}/{app_name}".encode()).hexdigest()[:20]


def service_port_name(namespace: str, app_name: str) -> str:
    """The Service's port name, which the Ingress's backend names. Traefik calls the backend of an
    Ingress `<namespace>-<service>-<port>`, so `team/payments-api` and `team-payments/api` behind
    port 80 were one backend, and one tenant's host was served by the other's pods (the kind tier
    caught it). A port name is at most 15 characters: `http-` and 10 of base 36, about 51 bits."""
    value = int(app_digest(namespace, app_name), 16)
    digits = ""
    for _ in range(10):
        value, digit = divmod(value, 36)
        digits += "0123456789abcdefghijklmnopqrstuvwxyz"[digit]
    return f"http-{digits}"


def strip_prefix_middleware_name(namespace: str, app_name: str) -> str:
    return f"{app_name}-{app_digest(namespace, app_name)}-strip-prefix"


def redirect_https_middleware_name(namespace: str, app_name: str) -> str:
    return f"{app_name}-{app_digest(namespace, app_name)}-redirect-https"


def hsts_middleware_name(namespace: str, app_name: str) -> str:
    return f"{app_name}-{app_digest(namespace, app_name)}-hsts"


# Names derived from the app's with a dot: an app's name is a DNS label (no dot), so no other app
# of the namespace can have one of these as its own (with '-', app `a`'s redirect Ingress
# `a-http-redirect` was app `a-http-redirect`'s Ingress).
def redirect_ingress_name(app_name: str) -> str:
    """The Traefik Ingress, or the Gateway API HTTPRoute, that redirects HTTP to HTTPS."""
    return f"{app_name}.http-redirect"


def gateway_tls_name(app_name: str) -> str:
    """The Certificate, and its Secret, of the app's own Gateway listeners: not tls_secret_name, which
    cert-manager's ingress-shim fills for the app's Ingress, so switching between the two never has
    two Certificates writing one Secret. (`x-gateway-tls` was app `x-gateway`'s Ingress TLS Secret.)"""
    return f"{app_name}.gateway-tls"


def legacy_child_names(app_name: str) -> dict[str, str]:
    """Names earlier versions derived with '-', so their children are found and deleted."""
    return {"redirect": f"{app_name}-http-redirect", "gateway_tls": f"{app_name}-gateway-tls"}


CLUSTER_SCOPE = "cluster"


def install_scope(namespaces: list[str]) -> str:
    if not namespaces:
        return CLUSTER_SCOPE
    return "ns-" + hashlib.sha256(",".join(sorted(namespaces)).encode()).hexdigest()[:10]


class AcmeDirectoryLike(Protocol):
    """render.plan.AcmeDirectory, described here because meta is imported by render, not the reverse."""

    server: str
    ca_bundle: str | None
    environment: str | None


def acme_cluster_issuer_name(directory: AcmeDirectoryLike, email: str, solver: str,
                             scope: str = CLUSTER_SCOPE) -> str:
    """A digest of everything that defines the issuer (directory, CA bundle, email, how http01
    challenges are answered, the install), 128 bits, so two apps share one only when they would
    render it byte for byte the same, and no tenant can choose inputs that land on another's
    name. `solver` is the http01 solver, as canonical JSON. The email is hashed: it is not secret,
    but a name must be a DNS subdomain."""
    key = "\n".join([directory.server, directory.ca_bundle or "", email, solver, scope])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    if directory.environment is not None and directory.ca_bundle is None:
        return f"fastapi-operator-letsencrypt-{directory.environment}-{digest}"
    return f"fastapi-operator-acme-{digest}"
