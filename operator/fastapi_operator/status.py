"""Status and conditions, computed from what was observed. Pure: no API calls."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from .errors import ReconcileError

READY = "Ready"
AVAILABLE = "Available"
CERTIFICATE_READY = "CertificateReady"
RECONCILED = "Reconciled"
# Ready is the conjunction of these, in this order; when one is not True, Ready says which.
READY_PARTS = (RECONCILED, AVAILABLE, CERTIFICATE_READY)
NOT_READY_REASONS = {RECONCILED: "NotReconciled", AVAILABLE: "NotAvailable", CERTIFICATE_READY: "CertificateNotReady"}


@dataclass(frozen=True)
class ConditionValue:
    status: str
    reason: str
    message: str = ""


def _condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def availability(deployment: dict[str, Any] | None) -> ConditionValue:
    """Available: the Deployment is available and fully rolled out at its current generation."""
    if deployment is None:
        return ConditionValue("False", "DeploymentMissing", "the Deployment does not exist yet")
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    desired = spec.get("replicas", 1)
    progressing = _condition(status.get("conditions"), "Progressing") or {}
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return ConditionValue("False", "RolloutFailed", progressing.get("message", "the rollout stalled"))
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return ConditionValue("False", "RollingOut", "the Deployment controller has not seen the new spec yet")
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated < desired or total > updated or available < desired:
        return ConditionValue(
            "False", "RollingOut",
            f"{updated}/{desired} pods updated, {available}/{desired} available",
        )
    return ConditionValue("True", "DeploymentAvailable", f"{available}/{desired} pods available")


def foreign_certificate(certificate: dict[str, Any] | None, ingress: dict[str, Any] | None,
                        hosts: list[str], secret_name: str) -> str | None:
    """Why `certificate` is not the one cert-manager made for the app's Ingress, or None when it is
    (or does not exist yet). Only that Certificate may vouch for the app's HTTPS."""
    if certificate is None:
        return None
    metadata, spec = certificate["metadata"], certificate.get("spec") or {}
    name = f"Certificate {metadata.get('namespace')}/{metadata['name']}"
    controller = next((r for r in metadata.get("ownerReferences") or [] if r.get("controller")), None)
    ingress_uid = (ingress or {}).get("metadata", {}).get("uid")
    if controller is None or controller.get("kind") != "Ingress" or controller.get("uid") != ingress_uid:
        return (f"{name} was not made by cert-manager for this app's Ingress: delete it, and cert-manager "
                f"makes the app's own from the Ingress")
    missing = sorted(set(hosts) - set(spec.get("dnsNames") or []))
    if spec.get("secretName") != secret_name or missing:
        return f"{name} does not cover {', '.join(missing) or secret_name} yet: cert-manager is updating it"
    return None


def certificate_readiness(tls: bool, certificate: dict[str, Any] | None, problem: str | None = None) -> ConditionValue:
    if not tls:
        return ConditionValue("True", "TLSNotRequested", "the app is not served over HTTPS")
    if problem is not None:
        return ConditionValue("False", "CertificateNotTheApps", problem)
    if certificate is None:
        return ConditionValue("Unknown", "CertificatePending", "cert-manager has not created the Certificate yet")
    ready = _condition(certificate.get("status", {}).get("conditions"), "Ready")
    if ready is None:
        return ConditionValue("Unknown", "CertificatePending", "cert-manager has not reported on the Certificate yet")
    if ready.get("status") == "True":
        return ConditionValue("True", "CertificateIssued", ready.get("message", ""))
    return ConditionValue(ready.get("status", "Unknown"), ready.get("reason") or "CertificateNotReady", ready.get("message", ""))


def reconciled(error: ReconcileError | None) -> ConditionValue:
    if error is None:
        return ConditionValue("True", "Reconciled", "all children match the spec")
    return ConditionValue("False", error.reason, error.message)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(values: dict[str, ConditionValue], generation: int | None,
               previous: list[dict[str, Any]] | None, timestamp: str) -> list[dict[str, Any]]:
    """Ready plus `values`, keeping lastTransitionTime where a condition's status did not change."""
    failing = [(type_, values[type_]) for type_ in READY_PARTS if values[type_].status != "True"]
    if failing:
        type_, value = failing[0]
        ready = ConditionValue("False", NOT_READY_REASONS[type_], f"{type_}: {value.reason}: {value.message}")
    else:
        ready = ConditionValue("True", "Ready", "the app is available and its certificate is ready")
    result = []
    for type_, value in ((READY, ready), *((t, values[t]) for t in (AVAILABLE, CERTIFICATE_READY, RECONCILED))):
        before = _condition(previous or [], type_)
        transition = before["lastTransitionTime"] if before and before.get("status") == value.status else timestamp
        condition = {
            "type": type_, "status": value.status, "reason": value.reason, "message": value.message,
            "lastTransitionTime": transition,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result


def compute_status(*, generation: int | None, url: str | None, selector: str,
                   deployment: dict[str, Any] | None, tls: bool, certificate: dict[str, Any] | None,
                   error: ReconcileError | None, previous: dict[str, Any] | None,
                   certificate_problem: str | None = None, timestamp: str | None = None) -> dict[str, Any]:
    previous = previous or {}
    deployment_status = (deployment or {}).get("status", {})
    desired = (deployment or {}).get("spec", {}).get("replicas", 0)
    ready_replicas = deployment_status.get("readyReplicas", 0)
    values = {
        AVAILABLE: availability(deployment),
        CERTIFICATE_READY: certificate_readiness(tls, certificate, certificate_problem),
        RECONCILED: reconciled(error),
    }
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "url": url,
        "replicas": deployment_status.get("replicas", 0),
        "readyReplicas": ready_replicas,
        "replicasSummary": f"{ready_replicas}/{desired}",
        "selector": selector,
        "conditions": conditions(values, generation, previous.get("conditions"), timestamp or now()),
    }
    return {key: value for key, value in status.items() if value is not None}


def status_changed(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    return new != (old or {})
