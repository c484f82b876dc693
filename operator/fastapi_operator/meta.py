"""Names, labels and annotation keys the operator puts on what it makes: one home for each."""

from __future__ import annotations

import hashlib

from .api import API_VERSION, KIND

OPERATOR_NAME = "fastapi-operator"
FIELD_MANAGER = OPERATOR_NAME

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"

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


def tls_secret_name(app_name: str) -> str:
    return f"{app_name}-tls"


def strip_prefix_middleware_name(app_name: str) -> str:
    return f"{app_name}-strip-prefix"


def redirect_https_middleware_name(app_name: str) -> str:
    return f"{app_name}-redirect-https"


def redirect_ingress_name(app_name: str) -> str:
    return f"{app_name}-http-redirect"


def acme_cluster_issuer_name(environment: str, email: str, ingress_class: str) -> str:
    """Deterministic per (environment, email, class), so apps asking for the same issuer share it.
    The email is hashed: it is not secret, but a name must be a DNS subdomain."""
    digest = hashlib.sha256(f"{environment}\n{email}\n{ingress_class}".encode()).hexdigest()[:10]
    return f"fastapi-operator-letsencrypt-{environment}-{digest}"
