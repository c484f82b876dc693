"""FastAPIApp manifests shared by the unit tests (pydantic) and the integration tests (the API
server), so both are held to accepting and rejecting the very same documents."""

from __future__ import annotations

import base64
import copy
import os
from typing import Any

from fastapi_operator.api import API_VERSION, KIND

# KWOK never runs an image, so any name does; on a cluster with real nodes (kind) these must be
# runnable FastAPI images with /health, such as examples/hello (fastapi-operator-hello:e2e on the kind tier).
TEST_IMAGE = os.environ.get("FASTAPI_OPERATOR_TEST_IMAGE", "registry.example.com/shop/hello:1.4.2")
TEST_IMAGE_NEXT = os.environ.get("FASTAPI_OPERATOR_TEST_IMAGE_NEXT", "registry.example.com/shop/hello:1.4.3")
# Small enough that the 50-app burst fits on one laptop-sized kind node.
SMALL_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def app_manifest(name: str = "hello", namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": TEST_IMAGE, **spec},
    }


FULL_SPEC: dict[str, Any] = {
    "image": TEST_IMAGE,
    "app": "app/main.py",
    "port": 8000,
    "replicas": 2,
    "resources": {"requests": {"cpu": "250m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}},
    "env": [{"name": "GREETING", "value": "hi"},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url", "optional": True}}}],
    # Optional, so real pods (the kind tier) start in a namespace that has neither object.
    "envFrom": [{"configMapRef": {"name": "hello-config", "optional": True}}],
    "preStart": [{"name": "migrate", "command": ["python", "-m", "app.migrate"]}],
    "healthPath": "/health",
    "ingress": {"hosts": ["hello.example.com"], "path": "/api", "className": "nginx"},
    "tls": {"enabled": True, "acme": {"email": "ops@example.com", "environment": "production"}},
    "autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70},
}


# A worker, a schedule, a volume of each kind and a sidecar: what issue 25's users run beside the web process.
PARTS: dict[str, Any] = {
    "volumes": [{"name": "shared", "emptyDir": {"sizeLimit": "64Mi"}},
                {"name": "settings", "configMap": {"name": "hello-settings", "optional": True}},
                {"name": "keys", "secret": {"secretName": "hello-keys", "optional": True}},
                {"name": "uploads", "persistentVolumeClaim": {"claimName": "uploads"}},
                {"name": "scratch", "ephemeral": {"storage": "1Gi"}}],
    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
    "sidecars": [{"name": "files", "image": "files:1", "command": ["serve", "/shared"],
                  "ports": [{"name": "files", "containerPort": 9000}], "probe": {"tcpPort": 9000},
                  "volumeMounts": [{"name": "shared", "mountPath": "/shared", "readOnly": True}]}],
    "workers": [{"name": "queue", "command": ["arq", "app.worker.WorkerSettings"], "replicas": 2,
                 "probe": {"command": ["arq", "--check", "app.worker.WorkerSettings"]},
                 "terminationGracePeriodSeconds": 300,
                 "volumeMounts": [{"name": "settings", "mountPath": "/etc/hello", "readOnly": True}]}],
    "schedules": [{"name": "nightly", "schedule": "0 3 * * *", "timeZone": "Europe/Paris",
                   "command": ["python", "-m", "app.cleanup"], "deadlineSeconds": 600}],
}


def namespace_host(namespace: str) -> str:
    """A host of the namespace's own: a host served in one namespace is claimed for it."""
    return f"hello.{namespace}.example.com"


def full_manifest(name: str = "hello", namespace: str = "shop") -> dict[str, Any]:
    manifest = app_manifest(name, namespace)
    manifest["spec"] = copy.deepcopy(FULL_SPEC)
    manifest["spec"]["ingress"]["hosts"] = [namespace_host(namespace)]
    return manifest


def _with(path: str, value: Any) -> dict[str, Any]:
    """FULL_SPEC with one field (dotted path under spec) replaced; None removes it."""
    spec = copy.deepcopy(FULL_SPEC)
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return spec


# A CA bundle as spec.tls.acme.caBundle takes it: base64 of PEM (the certificate itself is not parsed).
PEM_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()

# (id, spec, the field the error must name)
INVALID_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("image-missing", _with("image", None), "image"),
    ("image-empty", _with("image", ""), "image"),
    ("port-zero", _with("port", 0), "port"),
    ("port-too-high", _with("port", 70000), "port"),
    ("replicas-negative", _with("replicas", -1), "replicas"),
    ("unknown-field", {**FULL_SPEC, "workers": 4}, "workers"),
    ("path-without-slash", _with("ingress.path", "api"), "path"),
    ("path-trailing-slash", _with("ingress.path", "/api/"), "path"),
    ("path-regex", _with("ingress.path", "/api(.*)"), "path"),
    ("hosts-empty", _with("ingress.hosts", []), "hosts"),
    ("host-not-dns", _with("ingress.hosts", ["Hello_World.example.com"]), "hosts"),
    ("host-wildcard", _with("ingress.hosts", ["*.example.com"]), "hosts"),
    ("acme-and-cluster-issuer", _with("tls.clusterIssuer", "my-issuer"), "acme"),
    ("acme-email-not-address", _with("tls.acme.email", "ops-at-example"), "email"),
    ("acme-environment-unknown", _with("tls.acme.environment", "testing"), "environment"),
    ("acme-server-plain-http", _with("tls.acme", {"server": "http://acme.example.com/dir"}), "server"),
    ("acme-environment-and-server", _with("tls.acme.server", "https://acme.example.com/dir"), "server"),
    ("acme-ca-bundle-not-base64", _with("tls.acme", {"server": "https://ca.example.com/dir",
                                                     "caBundle": "not base64!"}), "caBundle"),
    ("min-above-max", _with("autoscaling.minReplicas", 20), "minReplicas"),
    ("max-replicas-missing", _with("autoscaling.maxReplicas", None), "maxReplicas"),
    ("cpu-target-above-100", _with("autoscaling.targetCPUUtilizationPercentage", 150), "targetCPUUtilizationPercentage"),
    ("quantity-garbage", _with("resources.limits.memory", "lots"), "memory"),
    ("prestart-name-not-dns", _with("preStart.0.name", "Migrate_DB"), "name"),
    ("prestart-command-empty", _with("preStart.0.command", []), "command"),
    ("env-name-missing", _with("env.0.name", None), "name"),
    ("health-path-relative", _with("healthPath", "health"), "healthPath"),
    ("prestart-run-unknown", _with("preStart.0.run", "Twice"), "run"),
    ("shutdown-drain-negative", _with("shutdown", {"drainSeconds": -1}), "drainSeconds"),
    ("pod-label-selects-pods", _with("podLabels", {"app.kubernetes.io/name": "other"}), "podLabels"),
    ("pod-label-value-bad", _with("podLabels", {"team": "not a value"}), "podLabels"),
    ("pod-annotation-apparmor", _with("podAnnotations", {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}), "podAnnotations"),
    ("toleration-operator-unknown", _with("tolerations", [{"key": "a", "operator": "Maybe"}]), "operator"),
    ("affinity-term-without-topology", _with("affinity", {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}), "topologyKey"),
    ("pull-secret-not-dns", _with("imagePullSecrets", [{"name": "Not_A_Name"}]), "name"),
    ("service-account-not-dns", _with("serviceAccountName", "Bad Name"), "serviceAccountName"),
    ("hsts-preload-without-subdomains", _with("ingress.hsts", {"preload": True}), "preload"),
    ("hsts-without-tls", {**_with("ingress.hsts", {}), "tls": {"enabled": False}}, "hsts"),
    ("env-name-repeated", _with("env", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]), "env"),
    ("pull-secret-repeated", _with("imagePullSecrets", [{"name": "registry"}, {"name": "registry"}]),
     "imagePullSecrets"),
    ("class-and-gateway", _with("ingress.gateway", {"name": "public"}), "gateway"),
    ("gateway-name-not-dns", _with("ingress", {"hosts": ["a.example.com"], "gateway": {"name": "Public GW"}}), "name"),
    ("gateway-listeners-unknown", _with("ingress", {"hosts": ["a.example.com"],
                                                    "gateway": {"name": "public", "listeners": "Both"}}), "listeners"),
    ("gateway-listeners-with-acme", _with("ingress", {"hosts": ["a.example.com"],
                                                      "gateway": {"name": "public", "listeners": "Gateway"}}), "tls"),
    ("worker-name-repeated", {**FULL_SPEC, "workers": [{"name": "q", "command": ["arq"]}, {"name": "q", "command": ["x"]}]},
     "workers"),
    ("worker-command-empty", {**FULL_SPEC, "workers": [{"name": "q", "command": []}]}, "command"),
    ("worker-replicas-and-autoscaling", {**FULL_SPEC, "workers": [{"name": "q", "command": ["arq"], "replicas": 2,
                                                                   "autoscaling": {"maxReplicas": 3}}]}, "replicas"),
    ("schedule-not-cron", {**FULL_SPEC, "schedules": [{"name": "n", "schedule": "every night", "command": ["x"]}]},
     "schedule"),
    ("schedule-name-repeated", {**FULL_SPEC, "schedules": [{"name": "n", "schedule": "@daily", "command": ["x"]},
                                                           {"name": "n", "schedule": "@hourly", "command": ["y"]}]},
     "schedules"),
    ("mount-undeclared", {**FULL_SPEC, "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}, "volumes"),
    ("worker-mount-undeclared", {**FULL_SPEC, "workers": [{"name": "q", "command": ["arq"], "volumeMounts": [
        {"name": "cache", "mountPath": "/cache"}]}]}, "volumes"),
    ("volume-two-sources", {**FULL_SPEC, "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"},
                                                      "secret": {"secretName": "s"}}]}, "volumes"),
    ("sidecar-named-app", {**FULL_SPEC, "sidecars": [{"name": "app", "image": "proxy:1"}]}, "sidecars"),
    ("sidecar-named-as-step", {**FULL_SPEC, "sidecars": [{"name": "migrate", "image": "proxy:1"}]}, "sidecars"),
    ("pod-label-selects-workers", _with("podLabels", {"fastapi-operator.dev/worker": "q"}), "podLabels"),
    ("worker-http-probe-without-port", {**FULL_SPEC, "workers": [{"name": "q", "command": ["x"],
                                                                  "probe": {"httpPath": "/health"}}]}, "httpPort"),
]

VALID_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {"image": "hello:1"}),
    ("full", copy.deepcopy(FULL_SPEC)),
    ("cluster-issuer", _with("tls", {"clusterIssuer": "my-issuer"})),
    ("tls-disabled", _with("tls", {"enabled": False})),
    ("import-string", _with("app", "app.main:app")),
    ("integer-quantities", _with("resources", {"requests": {"cpu": 1, "memory": "1Gi"}})),
    ("custom-command", _with("command", ["uvicorn", "app.main:app"])),
    ("traefik", _with("ingress.className", "traefik")),
    ("gateway", _with("ingress", {"hosts": ["a.example.com"], "path": "/api",
                                  "gateway": {"name": "public", "namespace": "infra"}})),
    ("gateway-listeners", {**_with("ingress", {"hosts": ["a.example.com"],
                                               "gateway": {"name": "public", "listeners": "Gateway"}}),
                           "tls": {"enabled": True}}),
    ("once-per-rollout", _with("preStart.0.run", "OncePerRollout")),
    ("hsts-preload", _with("ingress.hsts", {"maxAgeSeconds": 63072000, "includeSubDomains": True, "preload": True})),
    ("pod-settings", {**FULL_SPEC, "imagePullSecrets": [{"name": "registry"}], "serviceAccountName": "shop-api",
                      "nodeSelector": {"pool": "api"}, "podLabels": {"team": "shop"},
                      "podAnnotations": {"prometheus.io/scrape": "true"},
                      "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}],
                      "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                          {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}},
                      "shutdown": {"drainSeconds": 10, "timeoutSeconds": 50}}),
    ("acme-server-with-ca", _with("tls.acme", {"email": "ops@example.com", "server": "https://ca.internal:9000/acme/dir",
                                               "caBundle": PEM_BUNDLE})),
    ("parts", {**FULL_SPEC, **PARTS}),
]
