"""What a reconcile tells the user: Events for what it changed and for new problems, and the
status, both from one record of what was observed."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..api import FastAPIApp
from ..errors import ReconcileError
from ..kube import CERTIFICATE, FASTAPIAPP, HTTP_ROUTE, INGRESS, LISTENER_SET, Kube, api_message, kind_of
from ..logs import app_context
from ..meta import gateway_tls_name, selector_string, tls_secret_name
from ..render import Rendered
from ..status import (
    CERTIFICATE_AT_GATEWAY, READY, RECONCILED, ROUTED_BY_INGRESS, ConditionValue, compute_status, foreign_certificate,
    gateway_readiness, status_changed,
)
from .reads import Reads
from .rollout import Key, key_of
from .shared import served_hosts

log = logging.getLogger("fastapi_operator.reconcile")


@dataclass
class Observed:
    """What one reconcile saw and did: the input of its Events and of the app's status."""

    changes: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    deployment: dict[str, Any] | None = None
    tls: bool = False
    url: str | None = None
    certificate: dict[str, Any] | None = None
    certificate_problem: str | None = None
    certificate_value: ConditionValue | None = None
    routing: ConditionValue = ROUTED_BY_INGRESS
    template_generation: int | None = None  # the generation whose pods the Deployment's template says
    workloads: list[dict[str, Any]] | None = None  # the workers' Deployments and autoscalers, the CronJobs
    # The app has, or had at its last reconcile, a worker or schedule: only then are they looked for.
    parts_possible: bool = True

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body["metadata"]
        status = compute_status(
            generation=metadata.get("generation"), url=self.url, selector=selector_string(metadata["name"]),
            deployment=self.deployment, tls=self.tls, certificate=self.certificate,
            certificate_problem=self.certificate_problem, error=self.error, previous=body.get("status") or {},
            routing=self.routing, certificate_value=self.certificate_value, workloads=self.workloads,
        )
        if self.template_generation is not None:
            status["templateGeneration"] = self.template_generation
        return status


def by_verb(changes: list[str]) -> list[tuple[str, list[str]]]:
    """One Event per kind of change in a reconcile, not one per object: a new app is one
    "Created Deployment ns/a; Service ns/a; ..." instead of six Events."""
    grouped: dict[str, list[str]] = {}
    for change in changes:
        verb, _, rest = change.partition(" ")
        grouped.setdefault(verb, []).append(rest)
    return list(grouped.items())


def reported_reason(body: dict[str, Any]) -> str | None:
    """The reason of the Reconciled condition the app's status holds now."""
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c.get("reason") for c in conditions if c.get("type") == RECONCILED), None)


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in body.get("status", {}).get("conditions", []) if c.get("type") == type_), {})


def events(body: dict[str, Any], observed: Observed) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each Event to post; one Warning per distinct problem, not one
    per retry: the condition already holds it."""
    found = [("Normal", verb, f"{verb} {'; '.join(objects)}") for verb, objects in by_verb(observed.changes)]
    previous = _condition(body, RECONCILED)
    error = observed.error
    if error is not None and (previous.get("reason"), previous.get("message")) != (error.reason, error.message):
        found.append((error.event_type, error.reason, error.message))
    # A Gateway that refuses the app's route or listeners: Ready quotes it, and so does one Warning.
    routing, previous_ready = observed.routing, _condition(body, READY)
    if routing.status == "False" and (previous_ready.get("reason"), previous_ready.get("message")) != (
            routing.reason, routing.message):
        found.append(("Warning", routing.reason, routing.message))
    return found


class Reporter:
    def __init__(self, reads: Reads, first_status_settle_seconds: float = 0) -> None:
        self.reads = reads
        self.kube: Kube = reads.kube
        self.first_status_settle_seconds = first_status_settle_seconds
        # (namespace, name) -> the resourceVersion of the app's last status write: recorded as the
        # write's answer arrives, so the watch event it causes is known as the operator's own even
        # when it arrives before the reconcile has returned.
        self.written_versions: dict[tuple[str, str], str] = {}

    def report(self, body: dict[str, Any], observed: Observed) -> float | None:
        """Events, then the status; for a new app's first status held back, how many seconds until
        it is due."""
        self.post_events(body, observed)
        status = observed.status(body)
        held = first_status_wait(body, status, observed.error, self.first_status_settle_seconds,
                                 datetime.datetime.now(datetime.timezone.utc), observed.deployment)
        if held is None:
            self.write_status(body, status)
        return held

    def post_events(self, body: dict[str, Any], observed: Observed) -> None:
        metadata = body["metadata"]
        # The log says what the Events say, a line each: "Created Deployment ns/a; Service ns/a".
        for event_type, reason, message in events(body, observed):
            level = logging.WARNING if event_type == "Warning" else logging.INFO
            log.log(level, message, extra={**app_context(metadata), "reason": reason})
            try:
                self.kube.post_event(body, event_type, reason, message)
            except ApiException as failure:
                # Events are a courtesy: a terminating namespace refuses them, and that must
                # not fail the reconcile that the status already reports.
                log.info(f"Event not recorded: {api_message(failure)}", extra=app_context(metadata))

    def write_status(self, body: dict[str, Any], new: dict[str, Any]) -> None:
        """The status patched, unless it was already right; the new version recorded."""
        metadata = body["metadata"]
        old = body.get("status") or {}
        if not status_changed(new, old):
            return
        # A merge patch keeps keys it does not mention: clear the ones that no longer apply.
        patch = {**{key: None for key in old if key not in new}, **new}
        key = (metadata["namespace"], metadata["name"])
        # The watch event of this write waits until its version is recorded (Reads.writing).
        with self.reads.writing(FASTAPIAPP, *key):
            try:
                result = self.reads.written(self.kube.patch_status(*key, patch))
            except ApiException as error:
                if error.status == 404:  # deleted while we reconciled: nothing to report on
                    return
                raise
            self.written_versions[key] = result["metadata"]["resourceVersion"]


def first_status_wait(body: dict[str, Any], status: dict[str, Any], error: ReconcileError | None,
                      settle_seconds: float, now: datetime.datetime,
                      deployment: dict[str, Any] | None = None) -> float | None:
    """Seconds to hold back a new app's first status, or None to write it now. A new Deployment is
    often Available within moments: waiting for it makes one status write (the app Available)
    instead of two (Progressing, then Available), each a write of the app that every watcher of
    FastAPIApps receives. Only while the app has no status at all, nothing is wrong, it is not
    Available yet and its `deployment` was made less than `settle_seconds` ago by the API server's
    clock (the app itself, before it has one; a clock behind it, or far ahead, writes at once).
    Counted from the Deployment's making, not the app's: an operator busy with a thousand new apps
    comes to the last ones tens of seconds after they were made, and their Deployments are then
    as new as anyone's (measured at 1,000 apps: 75-100% Available within 3 s of being made)."""
    if body.get("status") or error is not None or settle_seconds <= 0:
        return None
    if any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or []):
        return None
    try:
        made = datetime.datetime.fromisoformat(
            (deployment or body)["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        return None
    age = (now - made).total_seconds()
    return settle_seconds - age if 0 <= age < settle_seconds else None


def observe_routing(reads: Reads, app: FastAPIApp, rendered: Rendered, children: dict[Key, dict[str, Any]],
                    observed: Observed) -> None:
    plan = rendered.plan
    if plan.gateway is not None:
        routes = [children.get(key_of(m)) for m in rendered.manifests if kind_of(m) is HTTP_ROUTE]
        own = plan.gateway.own_listeners
        observed.routing = gateway_readiness(
            routes, children.get((LISTENER_SET, app.name)), own_listeners=own,
            refusal=plan.gateway.facts.listener_sets_refusal(app.namespace) if own else None)
        if plan.tls and not own:
            observed.certificate_value = CERTIFICATE_AT_GATEWAY
        elif plan.tls:
            observed.certificate = children.get((CERTIFICATE, gateway_tls_name(app.name)))
    elif plan.tls:
        observed.certificate = reads.get(CERTIFICATE, app.namespace, tls_secret_name(app.namespace, app.name))
        observed.certificate_problem = foreign_certificate(
            observed.certificate, children.get((INGRESS, app.name)), served_hosts(app), tls_secret_name(app.namespace, app.name))
