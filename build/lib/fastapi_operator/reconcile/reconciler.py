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
    CERTIFICATE, CLUSTER_ISSUER, DEPLOYMENT, FASTAPIAPP, GATEWAY, HTTP_ROUTE, INGRESS, JOB, LISTENER_SET, Kube,
    api_message, is_namespace_terminating, kind_of,
)
from ..meta import gateway_tls_name, install_scope, tls_secret_name
from ..render import Rendered, render_app
from ..render.gateway import GatewayFacts, Gateways, requested_gateway
from ..render.ingress_class import IngressClasses
from ..render.migration import migration_selector
from ..settings import Settings
from ..status import CERTIFICATE_AT_GATEWAY, availability, foreign_certificate, gateway_readiness
from ..kinds import possible_children
from .children import ChildWriter, describe, is_controlled_by, taken
from .migrations import Gate, jobs_to_prune, migration_gate, step_names
from .pacing import Pacer, comes_from_operator
from .policy import refusal
from .reads import Reads
from .reporting import Observed, Reporter, reported_reason
from .rollout import Key, decide, key_of, pods_run_template
from .shared import SharedObjects, is_operator_issuer, served_hosts


@dataclass
class Outcome:
    """What a reconcile did; `retry` asks the work queue to come back with backoff."""

    changes: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    status_resource_version: str | None = None

    @property
    def retry(self) -> bool:
        return self.error is not None and self.error.retry


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings, cache: Cache | None = None) -> None:
        """Without a `cache` every read goes to the API server (the CLI's and some tests' way)."""
        self.kube = kube
        self.settings = settings
        self.reads = Reads(kube, cache)
        self.scope = install_scope(settings.namespaces)
        self.shared = SharedObjects(self.reads, settings, self.scope)
        self.reporter = Reporter(self.reads)
        self.pacer = Pacer(self.reads, settings.max_concurrent_operator_rollouts)

    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """None when the app no longer exists, or is going with its namespace."""
        body = self.reads.get(FASTAPIAPP, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        observed = Observed()
        app: FastAPIApp | None = None
        try:
            try:
                app = FastAPIApp.model_validate(body)
            except ValidationError as error:
                raise InvalidSpec(describe_validation_error(error)) from None
            gateways = self.gateways(app)
            classes = self.ingress_classes() if app.spec.ingress is not None and not gateways else {}
            rendered = render_app(app, self.settings, classes, gateways)
            observed.tls, observed.url = rendered.plan.tls, rendered.plan.url
            held = self.shared.hosts_held(app.namespace) if self.settings.max_hosts_per_namespace else set()
            not_allowed = refusal(app, rendered.plan, self.settings, held)
            if not_allowed is not None:
                raise not_allowed
            observed.template_generation = (body.get("status") or {}).get("templateGeneration")
            children = self.sync(app, rendered, observed, refused_before=reported_reason(body))
            observed.deployment = children.get((DEPLOYMENT, name))
            self.observe_routing(app, rendered, children, observed)
        except ReconcileError as error:
            observed.error = error
        except ApiException as error:
            if is_namespace_terminating(error):
                return None
            observed.error = ReconcileError(f"the API server answered {error.status}: {api_message(error)}")
        if observed.deployment is None and app is not None:
            live = self.reads.get(DEPLOYMENT, namespace, name)
            observed.deployment = live if live and is_controlled_by(live, body["metadata"]["uid"]) else None

        self.reporter.post_events(body, observed)
        version = self.reporter.write_status(body, observed)
        return Outcome(observed.changes, observed.error, version)

    def gateways(self, app: FastAPIApp) -> Gateways:
        """The Gateway the app's routes attach to, read (never written); empty for an Ingress app,
        and for a Gateway that does not exist (which plan_app reports)."""
        requested = requested_gateway(app, self.settings)
        if requested is None:
            return {}
        key, _ = requested
        gateway = self.reads.get(GATEWAY, key[0], key[1], required_api=True)
        return {key: GatewayFacts.from_object(gateway)} if gateway is not None else {}

    def ingress_classes(self) -> IngressClasses:
        return self.shared.ingress_classes()

    def observe_routing(self, app: FastAPIApp, rendered: Rendered, children: dict[Key, dict[str, Any]],
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
            observed.certificate = self.reads.get(CERTIFICATE, app.namespace, tls_secret_name(app.name))
            observed.certificate_problem = foreign_certificate(
                observed.certificate, children.get((INGRESS, app.name)), served_hosts(app), tls_secret_name(app.name))

    def read_children(self, app: FastAPIApp, rendered: Rendered, contested: bool) -> dict[Key, dict[str, Any] | None]:
        """Every possible child, from the cache. The cache holds only the operator's own
        children, so a name someone else took is found out by the create-only apply that makes
        a missing child. An app `contested` (in Conflict at its last reconcile) asks the API
        server about every child the cache lacks before writing, so its retries never make and
        undo the children that come before the taken one."""
        desired_keys = {key_of(m) for m in rendered.manifests}

        def look(key: Key) -> dict[str, Any] | None:
            desired = key in desired_keys
            # A kind the cache found missing may have been installed since: the API server says.
            installed_since = desired and self.reads.api_missing(key[0])
            return self.reads.get(key[0], app.namespace, key[1], required_api=desired, confirm_absence=installed_since)

        live = {key: look(key) for key in possible_children(app.namespace, app.name)}
        if contested:
            for key in desired_keys:
                if live.get(key) is None and key[0] is not CLUSTER_ISSUER:
                    live[key] = self.reads.get(key[0], app.namespace, key[1], required_api=True, confirm_absence=True)
        for kind, child_name in desired_keys:
            if kind is CLUSTER_ISSUER:
                live[(kind, child_name)] = self.reads.get(kind, None, child_name)
        return live

    def refuse_early(self, app: FastAPIApp, rendered: Rendered, live: dict[Key, dict[str, Any] | None]) -> None:
        """What can be refused before anything is written: a named ClusterIssuer that does not
        exist, children someone else holds."""
        referenced = rendered.plan.referenced_issuer
        if referenced and self.reads.get(CLUSTER_ISSUER, None, referenced, required_api=True) is None:
            raise InvalidSpec(f"spec.tls.clusterIssuer: ClusterIssuer {referenced!r} does not exist: create it, "
                              f"or use spec.tls.acme to let the operator manage one")
        desired_keys = {key_of(m) for m in rendered.manifests}
        uid = app.metadata.uid or ""
        conflicts = [
            describe(kind, child_name, app.namespace) for (kind, child_name), obj in live.items()
            if obj is not None and (kind, child_name) in desired_keys
            and not (is_operator_issuer(obj) if kind is CLUSTER_ISSUER else is_controlled_by(obj, uid))
        ]
        if conflicts:
            raise taken(conflicts)

    def sync(self, app: FastAPIApp, rendered: Rendered, observed: Observed,
             refused_before: str | None = None) -> dict[Key, dict[str, Any]]:
        """Make the children say what the spec renders, as far as the rollout allows now; return
        them as they are. `observed.error` says what still waits, and why. An app whose last
        reconcile was refused (`refused_before`: Conflict, InvalidSpec) checks before it writes,
        so its retries never make and undo the children that come before the refused one."""
        uid = app.metadata.uid or ""
        live = self.read_children(app, rendered, contested=refused_before == Conflict.reason)
        self.refuse_early(app, rendered, live)
        owned = {key for key, obj in live.items()
                 if obj is not None and key[0] is not CLUSTER_ISSUER and is_controlled_by(obj, uid)}
        jobs = [job for job in self.reads.list(JOB, app.namespace, migration_selector(app.name))
                if is_controlled_by(job, uid)]
        gate = self.paced(app, rendered, live, observed.template_generation,
                          migration_gate(app.namespace, rendered.migration, jobs))
        decision = decide(rendered.manifests, live, owned, gate)

        writer = ChildWriter(self.reads, app.namespace, uid, observed.changes)
        deployment_key = (DEPLOYMENT, app.name)
        job = decision.start_job
        if refused_before == InvalidSpec.reason and (decision.deployment is not None or job is not None):
            writer.check(decision.desired_deployment, live.get(deployment_key))
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
                    observed.changes.append(f"{'Created' if live.get(key) is None else 'Updated'} "
                                            f"{describe(key[0], key[1], None)}")
                continue
            current[key] = writer.write(manifest, live.get(key))
        if job is not None:
            writer.check(decision.desired_deployment, live.get(deployment_key))
            self.create_migration_job(writer, job)
        if decision.deployment is not None:
            current[deployment_key] = writer.write(decision.deployment, live.get(deployment_key))

        waiting = {key_of(m) for m in decision.held}
        deployment_held = decision.deployment is None and decision.hold is not None
        for manifest in rendered.manifests:
            key = key_of(manifest)
            if key in waiting or key[0] is CLUSTER_ISSUER or (key == deployment_key and deployment_held):
                continue
            current[key] = writer.revert_hand_edits(manifest, current[key])
        for key in decision.delete:
            writer.delete(key[0], key[1], current.pop(key))
        for old in jobs_to_prune(jobs, rendered.migration):
            writer.delete(JOB, old["metadata"]["name"], old, ": an older migration")
        if not changes_pod_template(decision.desired_deployment, current.get(deployment_key)):
            observed.template_generation = app.metadata.generation
        observed.error = decision.hold
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

    def create_migration_job(self, writer: ChildWriter, job: dict[str, Any]) -> None:
        """Create, never apply: a Job of that name that is not this app's is a conflict, not ours to take."""
        name = job["metadata"]["name"]
        try:
            self.reads.written(self.kube.create(job))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(JOB, writer.namespace, name)
            if existing is None or not is_controlled_by(existing, writer.app_uid):
                raise Conflict(f"Job {writer.namespace}/{name} already exists and is not owned by this FastAPIApp: "
                               f"delete or rename it") from None
            return
        writer.changes.append(f"Created {describe(JOB, name, writer.namespace)}: runs preStart "
                              f"{', '.join(step_names(job))} once, before the new version's pods start")

    # Shared objects, for the handlers' periodic collection.

    def list_apps(self) -> list[dict[str, Any]]:
        return self.shared.list_apps()

    def collect_unused_shared_objects(self) -> None:
        self.shared.collect_unused()
