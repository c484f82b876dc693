"""One reconcile of one FastAPIApp: render, read, decide (rollout.py, migrations.py), write what
differs, report. Synchronous; the handlers run it in a worker thread.

The order matters for "no half-made set of children": everything that can be decided without
writing (the spec, ownership of every child the cache holds, the referenced ClusterIssuer) is
checked before the first write. A name someone else holds is found by the create-only apply of
the missing child, and what the reconcile made before it is deleted again. A migration Job starts
only after every check that could still refuse the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api import FastAPIApp, describe_validation_error
from ..cache import Cache
from ..compare import changes_pod_template
from ..errors import Conflict, InvalidSpec, ReconcileError
from ..kube import (
    AUTOSCALER, CLUSTER_ISSUER, CRON_JOB, DEPLOYMENT, FASTAPIAPP, GATEWAY, JOB, Kube, api_message,
    is_namespace_terminating, kind_of,
)
from ..meta import install_scope
from ..render import Rendered, render_app
from ..render.gateway import GatewayFacts, Gateways, requested_gateway
from ..render.migration import migration_selector
from ..render.worker import schedule_selector, worker_selector
from ..settings import Settings
from ..status import availability
from .children import ChildWriter, describe, is_controlled_by
from .migrations import Gate, jobs_to_prune, migration_gate
from .pacing import Pacer, comes_from_operator
from .policy import refusal
from .reads import Reads
from .live import read_children, refuse_early
from .reporting import Observed, Reporter, observe_routing, reported_reason
from .rollout import Decision, Key, decide, key_of, pods_run_template
from .workloads import WorkloadDecision, by_key, decide_workloads
from .shared import SharedObjects


@dataclass
class Outcome:
    """What a reconcile did; `retry` asks the work queue to come back with backoff."""

    changes: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    status_held_seconds: float | None = None  # a new app's first status waits: reconcile again then

    @property
    def retry(self) -> bool:
        return self.error is not None and self.error.retry


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings, cache: Cache | None = None,
                 first_status_settle_seconds: float = 0) -> None:
        """Without a `cache` every read goes to the API server (the CLI's and some tests' way).
        `first_status_settle_seconds`: see reporting.first_status_wait."""
        self.kube = kube
        self.settings = settings
        self.reads = Reads(kube, cache)
        self.scope = install_scope(settings.namespaces)
        self.shared = SharedObjects(self.reads, settings, self.scope)
        self.shared.gateways = self.gateways
        self.reporter = Reporter(self.reads, first_status_settle_seconds)
        self.pacer = Pacer(self.reads, settings.max_concurrent_operator_rollouts)
        self.going: set[str] = set()  # apps (uids) of a namespace being deleted, which refused a write

    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """None when the app no longer exists, or is going with its namespace."""
        body = self.reads.get(FASTAPIAPP, namespace, name)
        if is_left_alone(body, self.going):
            return None
        observed = Observed()
        app: FastAPIApp | None = None
        try:
            try:
                app = FastAPIApp.model_validate(body)
            except ValidationError as error:
                raise InvalidSpec(describe_validation_error(error)) from None
            gateways = self.gateways(app)
            classes = self.shared.ingress_classes() if app.spec.ingress is not None and not gateways else {}
            rendered = render_app(app, self.settings, classes, gateways)
            observed.tls, observed.url = rendered.plan.tls, rendered.plan.url
            held = self.shared.hosts_held(app.namespace) if self.settings.max_hosts_per_namespace else set()
            not_allowed = refusal(app, rendered.plan, self.settings, held)
            if not_allowed is not None:
                raise not_allowed
            observed.template_generation = (body.get("status") or {}).get("templateGeneration")
            observed.parts_possible = has_workloads(body)
            children = self.sync(app, rendered, observed, refused_before=reported_reason(body))
            observed.deployment = children.get((DEPLOYMENT, name))
            observe_routing(self.reads, app, rendered, children, observed)
        except ReconcileError as error:
            observed.error = error
        except ApiException as error:
            if is_namespace_terminating(error):  # its apps go with it: no more tries, for any child or app of it
                self.going |= {app["metadata"].get("uid") for app in [body, *self.reads.list(FASTAPIAPP, namespace)]}
                return None
            observed.error = ReconcileError(f"the API server answered {error.status}: {api_message(error)}")
        if app is not None:
            observe_as_they_are(self.reads, app, observed)

        held = self.reporter.report(body, observed)
        return Outcome(observed.changes, observed.error, held)

    def gateways(self, app: FastAPIApp) -> Gateways:
        """The Gateway the app's routes attach to, read (never written); empty for an Ingress app,
        and for a Gateway that does not exist (which plan_app reports)."""
        requested = requested_gateway(app, self.settings)
        if requested is None:
            return {}
        key, _ = requested
        gateway = self.reads.get(GATEWAY, key[0], key[1], required_api=True)
        return {key: GatewayFacts.from_object(gateway)} if gateway is not None else {}

    def sync(self, app: FastAPIApp, rendered: Rendered, observed: Observed,
             refused_before: str | None = None) -> dict[Key, dict[str, Any]]:
        """Make the children say what the spec renders, as far as the rollout allows now; return
        them as they are. `observed.error` says what still waits, and why. An app whose last
        reconcile was refused (`refused_before`: Conflict, InvalidSpec) checks before it writes,
        so its retries never make and undo the children that come before the refused one."""
        uid = app.metadata.uid or ""
        live = read_children(self.reads, app, rendered, contested=refused_before == Conflict.reason)
        refuse_early(self.reads, app, rendered, live)
        owned = {key for key, obj in live.items()
                 if obj is not None and key[0] is not CLUSTER_ISSUER and is_controlled_by(obj, uid)}
        jobs = [job for job in self.reads.list(JOB, app.namespace, migration_selector(app.name))
                if is_controlled_by(job, uid)]
        gate = self.paced(app, rendered, live, observed.template_generation,
                          migration_gate(app.namespace, rendered.migration, jobs))
        decision = decide(rendered.manifests, live, owned, gate)
        workloads = read_workloads(self.reads, app.namespace, app.name, uid) if observed.parts_possible else {}
        parts = decide_workloads(rendered.workloads, workloads, gate)
        writer = ChildWriter(self.reads, app.namespace, uid, observed.changes)
        current = self.apply(app, rendered, decision, live, writer, refused_before == InvalidSpec.reason, (parts, workloads))
        for old in jobs_to_prune(jobs, rendered.migration):
            writer.delete(JOB, old["metadata"]["name"], old, ": an older migration")
        if not changes_pod_template(decision.desired_deployment, current.get((DEPLOYMENT, app.name))):
            observed.template_generation = app.metadata.generation
        observed.error = decision.hold
        if decision.hold is not None and parts.held:
            observed.error = type(decision.hold)(f"{decision.hold.message}; {parts.waiting()} wait with it")
        observed.workloads = [current[k] for k in map(key_of, rendered.workloads) if k in current]
        return current

    def apply(self, app: FastAPIApp, rendered: Rendered, decision: Decision, live: dict[Key, dict[str, Any] | None],
              writer: ChildWriter, check_first: bool,
              parts: tuple[WorkloadDecision, dict[Key, dict[str, Any]]]) -> dict[Key, dict[str, Any]]:
        """The writes of a decision, in an order that drops no request and trusts no header without
        its policy; the children as they are after them."""
        deployment_key = (DEPLOYMENT, app.name)
        job = decision.start_job
        workloads, live_workloads = parts
        if check_first and (decision.deployment is not None or job is not None):
            writer.check(decision.desired_deployment, live.get(deployment_key))
        if job is not None or decision.deployment is not None:
            check_workloads(writer, workloads, live_workloads, migration_starts=job is not None)
        if job is not None:
            # A Job is created, never applied, and starts running at once: its pod is checked first.
            writer.refusing_undoes(job, lambda: self.kube.create(job, dry_run=True))
        self.shared.claim_hosts(app)
        current = {key: obj for key, obj in live.items() if obj is not None}
        # The rendered order: what a child names (a Middleware an Ingress uses, the policy the
        # pods' trust in forwarded headers relies on) exists before it does.
        for manifest in decision.write:
            key = key_of(manifest)
            if key[0] is CLUSTER_ISSUER:
                current[key], applied = self.shared.ensure_issuer(manifest, writer)
                if applied:
                    writer.changes.append(f"{'Created' if live.get(key) is None else 'Updated'} "
                                          f"{describe(key[0], key[1], None)}")
                continue
            current[key] = writer.write(manifest, live.get(key))
        if job is not None:
            writer.check(decision.desired_deployment, live.get(deployment_key))
            writer.create_job(job)
        if decision.deployment is not None:
            current[deployment_key] = writer.write(decision.deployment, live.get(deployment_key))
        waiting = {key_of(m) for m in decision.held}
        for manifest in rendered.manifests:
            key = key_of(manifest)
            if key in waiting or key[0] is CLUSTER_ISSUER or (key == deployment_key and decision.deployment_held):
                continue
            current[key] = writer.revert_hand_edits(manifest, current[key])
        for key in decision.delete:
            writer.delete(key[0], key[1], current.pop(key))
        current.update(write_workloads(writer, workloads, live_workloads))
        return current

    def paced(self, app: FastAPIApp, rendered: Rendered, live: dict[Key, dict[str, Any] | None],
              template_generation: int | None, gate: Gate) -> Gate:
        """The migration gate, closed too while a change of the pods that comes from the operator
        waits for its turn (its Job as well: an operator change that reaches the Job's pod would
        run every app's migration at once)."""
        desired = next(m for m in rendered.manifests if kind_of(m) is DEPLOYMENT)
        current = live.get((DEPLOYMENT, app.name))
        key = (app.namespace, app.name)
        if pods_run_template(desired, current) and (current is None or availability(current).status == "True"):
            self.pacer.settled(key)
        if (gate.hold is not None and gate.start is None) or not comes_from_operator(
                desired, current, app.metadata.generation, template_generation):
            return gate
        queued = self.pacer.admit(key)
        return gate if queued is None else Gate(queued)

    # Shared objects, for the handlers' periodic collection.

    def list_apps(self) -> list[dict[str, Any]]:
        return self.shared.list_apps()

    def collect_unused_shared_objects(self) -> None:
        self.shared.collect_unused()


def is_left_alone(body: dict[str, Any] | None, going: set[str]) -> bool:
    """An app no reconcile acts on: gone, being deleted, or going with its namespace (`going`)."""
    return body is None or bool(body["metadata"].get("deletionTimestamp")) or body["metadata"].get("uid") in going


def observe_as_they_are(reads: Reads, app: FastAPIApp, observed: Observed) -> None:
    """After a refusal: the Deployment and the workloads the status reports, as they are."""
    uid = app.metadata.uid or ""
    if observed.deployment is None:
        live = reads.get(DEPLOYMENT, app.namespace, app.name)
        observed.deployment = live if live and is_controlled_by(live, uid) else None
    if observed.workloads is None:
        found = read_workloads(reads, app.namespace, app.name, uid) if observed.parts_possible else {}
        observed.workloads = list(found.values())


def has_workloads(body: dict[str, Any]) -> bool:
    """Has the app, or had it at its last reconcile, any worker or schedule? An app that never had
    one is spared the label scans of the cache (2.4 ms for the Deployments of 1,000 apps in one namespace)."""
    status = body.get("status") or {}
    return bool((body.get("spec") or {}).get("workers") or (body.get("spec") or {}).get("schedules")
                or status.get("workers") or status.get("schedules"))


def read_workloads(reads: Reads, namespace: str, app_name: str, uid: str) -> dict[Key, dict[str, Any]]:
    """The app's workers' Deployments and autoscalers and its schedules' CronJobs, found by label:
    their names come from the spec, so a dropped one is found only so."""
    found: dict[Key, dict[str, Any]] = {}
    for kind, selector in ((DEPLOYMENT, worker_selector(app_name)), (AUTOSCALER, worker_selector(app_name)),
                           (CRON_JOB, schedule_selector(app_name))):
        objects = [obj for obj in reads.list(kind, namespace, selector) if is_controlled_by(obj, uid)]
        found.update(by_key(objects, kind))
    return found


def check_workloads(writer: ChildWriter, decision: WorkloadDecision, live: dict[Key, dict[str, Any]],
                    migration_starts: bool) -> None:
    """What the new version's workers and schedules would write is checked before its web pods (and
    its migration) start: none of them can be refused halfway through a rollout. Called only then:
    a worker's write alone needs no rehearsal, its refusal is the same answer."""
    for manifest in decision.write + (decision.held if migration_starts else []):
        writer.check(manifest, live.get(key_of(manifest)))


def write_workloads(writer: ChildWriter, decision: WorkloadDecision,
                    live: dict[Key, dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """After the web Deployment: the workers and schedules of the version it runs, the gate's
    suspensions, hand edits reverted on all but those that wait, and the dropped ones deleted."""
    current = dict(live)
    for manifest in decision.write:
        current[key_of(manifest)] = writer.write(manifest, live.get(key_of(manifest)))
    for cron_job, suspend in decision.suspend:
        current[key_of(cron_job)] = writer.set_suspended(cron_job, suspend)
    held = {key_of(m) for m in decision.held}
    for manifest in decision.desired:
        key = key_of(manifest)
        if key not in held and key in current:
            current[key] = writer.revert_hand_edits(manifest, current[key])
    for key in decision.delete:
        writer.delete(key[0], key[1], current.pop(key))
    return current
