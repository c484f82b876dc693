"""Status and conditions, computed from what was observed. Pure: no API calls."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from .errors import ReconcileError
from .labels import LABEL_SCHEDULE, LABEL_WORKER

READY = "Ready"
AVAILABLE = "Available"
CERTIFICATE_READY = "CertificateReady"
RECONCILED = "Reconciled"
# Not a condition of its own, so an app reads the same behind an Ingress or a Gateway: with the
# Gateway API, Ready also needs the Gateway to accept the routes, and says so in its own words.
ROUTED = "Routed"
# Ready is the conjunction of these, in this order; when one is not True, Ready says which.
READY_PARTS = (RECONCILED, AVAILABLE, ROUTED, CERTIFICATE_READY)
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


ROUTED_BY_INGRESS = ConditionValue("True", "Routed", "an Ingress routes the app")
CERTIFICATE_AT_GATEWAY = ConditionValue(
    "True", "CertificateAtGateway", "the Gateway's own HTTPS listeners hold the certificate")


def _described(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def _is_current(condition: dict[str, Any], obj: dict[str, Any]) -> bool:
    return condition.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)


def _parent_matches(desired: dict[str, Any], reported: dict[str, Any], route_namespace: str) -> bool:
    def key(ref: dict[str, Any]) -> tuple[Any, ...]:
        return (ref.get("kind", "Gateway"), ref.get("namespace") or route_namespace, ref["name"],
                ref.get("sectionName"))
    return key(desired) == key(reported)


def _quoted(condition: dict[str, Any]) -> str:
    return f"{condition.get('type')}={condition.get('status')} {condition.get('reason', '')}: " \
           f"{condition.get('message', '')}".rstrip(": ")


def route_readiness(route: dict[str, Any] | None) -> ConditionValue | None:
    """None when every parent accepted the HTTPRoute with its references resolved."""
    if route is None:
        return ConditionValue("Unknown", "RoutePending", "the HTTPRoute does not exist yet")
    name = _described(route)
    reported = (route.get("status") or {}).get("parents") or []
    for parent in route["spec"].get("parentRefs") or []:
        entry = next((p for p in reported if _parent_matches(parent, p.get("parentRef") or {},
                                                              route["metadata"].get("namespace"))), None)
        where = f"{parent['namespace']}/" if parent.get("namespace") else ""
        parent_name = f"{parent.get('kind', 'Gateway')} {where}{parent['name']}"
        if parent.get("sectionName"):
            parent_name += f" listener {parent['sectionName']}"
        conditions_ = (entry or {}).get("conditions") or []
        accepted, resolved = _condition(conditions_, "Accepted"), _condition(conditions_, "ResolvedRefs")
        if accepted is None or not _is_current(accepted, route):
            return ConditionValue("Unknown", "RoutePending",
                                  f"{parent_name} has not reported on {name} yet (is a Gateway controller running?)")
        if accepted.get("status") != "True":
            return ConditionValue("False", "RouteNotAccepted", f"{parent_name} does not accept {name}: {_quoted(accepted)}")
        if resolved is not None and resolved.get("status") != "True":
            return ConditionValue("False", "RouteRefsNotResolved",
                                  f"{parent_name} cannot resolve the references of {name}: {_quoted(resolved)}")
    return None


def listener_set_readiness(listener_set: dict[str, Any] | None) -> ConditionValue | None:
    """None when the Gateway accepted the app's ListenerSet and programmed its listeners."""
    if listener_set is None:
        return ConditionValue("Unknown", "ListenerPending", "the ListenerSet does not exist yet")
    name = _described(listener_set)
    conditions_ = (listener_set.get("status") or {}).get("conditions") or []
    accepted, programmed = _condition(conditions_, "Accepted"), _condition(conditions_, "Programmed")
    if accepted is not None and _is_current(accepted, listener_set) and accepted.get("status") == "False":
        return ConditionValue("False", "ListenerSetNotAccepted", f"the Gateway does not accept {name}: {_quoted(accepted)}")
    if programmed is None or not _is_current(programmed, listener_set) or programmed.get("status") == "Unknown":
        return ConditionValue("Unknown", "ListenerPending",
                              f"no Gateway controller has programmed {name} yet (does it support ListenerSets?)")
    if programmed.get("status") != "True":
        return ConditionValue("False", "ListenerNotProgrammed", f"{name} is not programmed: {_quoted(programmed)}")
    return None


def gateway_readiness(routes: list[dict[str, Any] | None], listener_set: dict[str, Any] | None, *,
                      own_listeners: bool, refusal: str | None) -> ConditionValue:
    """Routed through a Gateway: the ListenerSet (if the app brings its listeners) is accepted and
    programmed, and each parent accepts each HTTPRoute with its references resolved. A Gateway's
    own refusal is quoted, reason and message, so the user can take it to the platform team."""
    if refusal is not None:
        return ConditionValue("False", "ListenerSetsNotAllowed", refusal)
    problems = ([listener_set_readiness(listener_set)] if own_listeners else []) + [route_readiness(r) for r in routes]
    found = [problem for problem in problems if problem is not None]
    refused = [problem for problem in found if problem.status == "False"]
    if found:
        return (refused or found)[0]  # a refusal says more than a wait
    return ConditionValue("True", "Routed", "the Gateway accepted the routes" +
                          (" and programmed the app's listeners" if own_listeners else ""))


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
        ready = (ConditionValue("False", value.reason, value.message) if type_ == ROUTED else
                 ConditionValue("False", NOT_READY_REASONS[type_], f"{type_}: {value.reason}: {value.message}"))
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


def _label(obj: dict[str, Any], key: str) -> str | None:
    return (obj["metadata"].get("labels") or {}).get(key)


def worker_status(deployment: dict[str, Any]) -> dict[str, Any]:
    status = deployment.get("status") or {}
    return {"name": _label(deployment, LABEL_WORKER), "replicas": status.get("replicas", 0),
            "readyReplicas": status.get("readyReplicas", 0)}


def schedule_status(cron_job: dict[str, Any]) -> dict[str, Any]:
    status = cron_job.get("status") or {}
    reported = {"name": _label(cron_job, LABEL_SCHEDULE), "suspended": bool(cron_job["spec"].get("suspend")),
                "active": len(status.get("active") or [])}
    for key in ("lastScheduleTime", "lastSuccessfulTime"):
        if status.get(key):
            reported[key] = status[key]
    return reported


def parts_status(deployment: dict[str, Any] | None, workloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Each part of the app, and all of them in one line for `kubectl get` (the Parts column)."""
    workers = [worker_status(d) for d in workloads if d["kind"] == "Deployment"]
    schedules = [schedule_status(c) for c in workloads if c["kind"] == "CronJob"]
    if not workers and not schedules:
        return {}
    web = f"web {((deployment or {}).get('status') or {}).get('readyReplicas', 0)}/" \
          f"{(deployment or {}).get('spec', {}).get('replicas', 0)}"
    summary = [web] + [f"worker {w['name']} {w['readyReplicas']}/{w['replicas']}" for w in workers] + [
        f"schedule {c['name']}{' suspended' if c['suspended'] else ''}" for c in schedules]
    parts: dict[str, Any] = {"partsSummary": ", ".join(summary)}
    if workers:
        parts["workers"] = workers
    if schedules:
        parts["schedules"] = schedules
    return parts


def app_availability(deployment: dict[str, Any] | None, workloads: list[dict[str, Any]]) -> ConditionValue:
    """The web Deployment's availability, then each worker's: Ready covers every part that runs."""
    web = availability(deployment)
    if web.status != "True":
        return web
    for worker in (w for w in workloads if w["kind"] == "Deployment"):
        value = availability(worker)
        if value.status != "True":
            return ConditionValue(value.status, value.reason, f"worker {_label(worker, LABEL_WORKER)}: {value.message}")
    return web


def compute_status(*, generation: int | None, url: str | None, selector: str,
                   deployment: dict[str, Any] | None, tls: bool, certificate: dict[str, Any] | None,
                   error: ReconcileError | None, previous: dict[str, Any] | None,
                   certificate_problem: str | None = None, timestamp: str | None = None,
                   routing: ConditionValue = ROUTED_BY_INGRESS,
                   certificate_value: ConditionValue | None = None,
                   workloads: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    previous = previous or {}
    deployment_status = (deployment or {}).get("status", {})
    desired = (deployment or {}).get("spec", {}).get("replicas", 0)
    ready_replicas = deployment_status.get("readyReplicas", 0)
    values = {
        AVAILABLE: app_availability(deployment, workloads or []),
        CERTIFICATE_READY: certificate_value or certificate_readiness(tls, certificate, certificate_problem),
        RECONCILED: reconciled(error),
        ROUTED: routing,
    }
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "url": url,
        "replicas": deployment_status.get("replicas", 0),
        "readyReplicas": ready_replicas,
        "replicasSummary": f"{ready_replicas}/{desired}",
        "selector": selector,
        **parts_status(deployment, workloads or []),
        "conditions": conditions(values, generation, previous.get("conditions"), timestamp or now()),
    }
    return {key: value for key, value in status.items() if value is not None}


def status_changed(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    return new != (old or {})
