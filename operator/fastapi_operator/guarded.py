"""The parts of each child that belong to the operator alone.

A field someone else adds there (with `kubectl edit`, `kubectl patch`, another controller) is a
hand edit the operator reverts, because it can weaken what the operator promises: host
namespaces, privilege, the user a container runs as, extra containers, a Service exposed past
the proxy, a controller snippet on the Ingress. Everything outside these parts is left to
others: labels and annotations on the objects and on the pod template (`kubectl rollout
restart` writes one), the replica count while an autoscaler owns it, `kubectl rollout pause`.
"""

from __future__ import annotations

from .labels import RESERVED_POD_ANNOTATION_PREFIXES
from .managed_fields import Path

SPEC = ("f:spec",)
# Open to other managers inside a guarded spec.
DEPLOYMENT_OPEN = (("f:spec", "f:replicas"), ("f:spec", "f:paused"), ("f:spec", "f:template", "f:metadata"))
# A schedule's suspension is the migration gate's and a user's (`kubectl patch cronjob ... suspend`),
# as a Deployment's pause is.
CRON_JOB_OPEN = (("f:spec", "f:suspend"),)
# Annotations that change what a controller does with the object, so only the operator sets them.
INGRESS_CONTROLLER_ANNOTATION_PREFIXES = (
    "nginx.ingress.kubernetes.io/", "traefik.ingress.kubernetes.io/", "cert-manager.io/", "acme.cert-manager.io/",
)


def _annotation_with_prefix(path: Path, at: Path, prefixes: tuple[str, ...]) -> bool:
    return (len(path) == len(at) + 1 and path[:len(at)] == at
            and path[-1].startswith("f:") and path[-1][2:].startswith(prefixes))


def is_guarded(kind: str, path: Path) -> bool:
    if kind == "Deployment":
        if _annotation_with_prefix(path, ("f:spec", "f:template", "f:metadata", "f:annotations"),
                                   RESERVED_POD_ANNOTATION_PREFIXES):
            return True
        return path[:1] == SPEC and len(path) > 1 and not any(path[:len(p)] == p for p in DEPLOYMENT_OPEN)
    if kind == "CronJob" and any(path[:len(p)] == p for p in CRON_JOB_OPEN):
        return False
    if kind == "Ingress" and _annotation_with_prefix(path, ("f:metadata", "f:annotations"),
                                                     INGRESS_CONTROLLER_ANNOTATION_PREFIXES):
        return True
    return path[:1] == SPEC and len(path) > 1
