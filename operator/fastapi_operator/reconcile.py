"""One reconcile of one FastAPIApp: render, check, apply what differs, delete what is stale,
write status when it changed. Synchronous; the handlers run it in a worker thread.

The order matters for "no half-made set of children": everything that can be decided without
writing (the spec, ownership of every child the cache holds, the referenced ClusterIssuer) is
checked before the first write. A name someone else holds is found by the create-only apply of
the missing child, and what the reconcile made before it is deleted again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .api import FastAPIApp, describe_validation_error
from .cache import Cache
from .compare import changes_pod_template, needs_apply
from .errors import Conflict, InvalidSpec, MigrationFailed, MigrationRunning, ReconcileError
from .guarded import is_guarded
from .kube import (
    AUTOSCALER, CERTIFICATE, CLUSTER_ISSUER, DEPLOYMENT, DISRUPTION_BUDGET, FASTAPIAPP, GATEWAY, HOST_CLAIM,
    HTTP_ROUTE, INGRESS, INGRESS_CLASS, JOB, LISTENER_SET, MIDDLEWARE, NETWORK_POLICY, SERVICE, Kind, Kube, api_message,
    is_namespace_terminating, is_replaced, is_unbuildable_apply, kind_of, missing_api_error,
)
from .logs import app_context
from .managed_fields import applied_by, foreign_fields, removal_patch
from .meta import (
    ANNOTATION_CLAIMED_BY, AUTOSCALER_HANDOFF_FIELD_MANAGER, FIELD_MANAGER, LABEL_COMPONENT, LABEL_MANAGED_BY,
    LABEL_SCOPE, OPERATOR_NAME, gateway_tls_name, hsts_middleware_name, install_scope, redirect_https_middleware_name,
    redirect_ingress_name, selector_string, strip_prefix_middleware_name, tls_secret_name,
)
from .render import render_app
from .render.gateway import GatewayFacts, Gateways, requested_gateway
from .render.hostclaim import render_host_claim
from .render.ingress_class import IngressClassFacts, IngressClasses
from .render.plan import Plan, plan_app
from .render.issuer import ACME_ISSUER_COMPONENT
from .render.migration import KEPT_MIGRATION_JOBS, migration_selector
from .settings import Settings
from .status import (
    CERTIFICATE_AT_GATEWAY, READY, RECONCILED, ROUTED_BY_INGRESS, ConditionValue, compute_status, foreign_certificate,
    gateway_readiness, status_changed,
)

log = logging.getLogger("fastapi_operator.reconcile")


@dataclass
class Outcome:
    """What a reconcile did; `retry` asks the work queue to come back with backoff."""

    changes: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    status_resource_version: str | None = None

    @property
    def retry(self) -> bool:
        return self.error is not None and self.error.retry


def possible_children(app_name: str) -> list[tuple[Kind, str]]:
    """Every namespaced object an app can own, desired or not, so stale ones can be found."""
    return [
        (MIDDLEWARE, strip_prefix_middleware_name(app_name)),
        (MIDDLEWARE, redirect_https_middleware_name(app_name)),
        (MIDDLEWARE, hsts_middleware_name(app_name)),
        (SERVICE, app_name),
        (DEPLOYMENT, app_name),
        (INGRESS, app_name),
        (INGRESS, redirect_ingress_name(app_name)),
        (CERTIFICATE, gateway_tls_name(app_name)),
        (LISTENER_SET, app_name),
        (HTTP_ROUTE, app_name),
        (HTTP_ROUTE, redirect_ingress_name(app_name)),
        (NETWORK_POLICY, app_name),
        (AUTOSCALER, app_name),
        (DISRUPTION_BUDGET, app_name),
    ]


def is_controlled_by(obj: dict[str, Any], app_uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == app_uid
        for ref in obj.get("metadata", {}).get("ownerReferences", [])
    )


def is_operator_issuer(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and labels.get(LABEL_COMPONENT) == ACME_ISSUER_COMPONENT


def served_hosts(app: FastAPIApp) -> list[str]:
    return sorted(set(app.spec.ingress.hosts)) if app.spec.ingress is not None else []


def step_names(job: dict[str, Any]) -> list[str]:
    spec = job["spec"]["template"]["spec"]
    return [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]


def _job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_ and c.get("status") == "True"), None)


def job_finished(job: dict[str, Any]) -> bool:
    return bool(_job_condition(job, "Complete") or _job_condition(job, "Failed"))


def migration_hold(app: FastAPIApp, job: dict[str, Any]) -> ReconcileError | None:
    """Why the Deployment must wait for this Job, or None once it succeeded."""
    if _job_condition(job, "Complete"):
        return None
    name = f"Job {app.namespace}/{job['metadata']['name']}"
    steps = ", ".join(step_names(job))
    failed = _job_condition(job, "Failed")
    if failed:
        return MigrationFailed(
            f"{name} (preStart {steps}) failed: {failed.get('message') or failed.get('reason') or 'its pod failed'}. "
            f"The Deployment stays at its current version. Read `kubectl logs -n {app.namespace} "
            f"job/{job['metadata']['name']}`, then fix the step or the image in the FastAPIApp (a changed spec "
            f"starts a new Job), or delete the Job to run it again")
    return MigrationRunning(f"{name} runs preStart {steps} once for this rollout; the Deployment keeps its "
                            f"current pods until it succeeds")


def by_verb(changes: list[str]) -> list[tuple[str, list[str]]]:
    """One Event per kind of change in a reconcile, not one per object: a new app is one
    "Created Deployment ns/a; Service ns/a; ..." instead of six Events."""
    grouped: dict[str, list[str]] = {}
    for change in changes:
        verb, _, rest = change.partition(" ")
        grouped.setdefault(verb, []).append(rest)
    return list(grouped.items())


@dataclass(frozen=True)
class Made:
    """A child a reconcile created, and the change it reported: undone if a later one is taken."""

    kind: Kind
    name: str
    uid: str
    change: str


def taken(described: list[str]) -> Conflict:
    one = len(described) == 1
    return Conflict(
        f"{', '.join(described)} already exist{'s' if one else ''} and {'is' if one else 'are'} not owned by "
        f"this FastAPIApp: delete or rename {'it' if one else 'them'}, or give the FastAPIApp another name"
    )


def reported_reason(body: dict[str, Any]) -> str | None:
    """The reason of the Reconciled condition the app's status holds now."""
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c.get("reason") for c in conditions if c.get("type") == RECONCILED), None)


def _uid(obj: dict[str, Any] | None) -> str | None:
    return obj["metadata"].get("uid") if obj else None


def _describe(kind: Kind, name: str, namespace: str | None) -> str:
    return f"{kind.kind} {namespace}/{name}" if namespace and kind.namespaced else f"{kind.kind} {name}"


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings, cache: Cache | None = None) -> None:
        """Without a `cache` every read goes to the API server (the CLI's and some tests' way)."""
        self.kube = kube
        self.settings = settings
        self.cache = cache
        self.scope = install_scope(settings.namespaces)
        # Cluster-scoped objects shared between apps (ClusterIssuers, HostClaims) are made by
        # reconciles and collected when unused. Holding this lock across "is it used?" and
        # "delete it", and across "does it exist?" and "make it", means a collection can never
        # delete what a reconcile running at the same moment has just decided to rely on.
        self.shared_objects_lock = threading.Lock()

    def read(self, kind: Kind, namespace: str | None, name: str, *, required_api: bool = False,
             confirm_absence: bool = False) -> dict[str, Any] | None:
        """From the cache when it watches the kind. With `confirm_absence`, an absence is asked of
        the API server too (a shared object about to be made; a kind whose CRD may have been
        installed since the cache last looked)."""
        if self.cache is None or not self.cache.watches(kind):
            return self.kube.get(kind, namespace, name, required_api=required_api)
        if required_api and not confirm_absence and self.cache.api_missing(kind):
            self.cache.recheck(kind)
            raise missing_api_error(kind)
        obj = self.cache.get(kind, namespace, name)
        if obj is None and confirm_absence:
            self.cache.recheck(kind)  # a CRD installed since the last look is listed again
            obj = self.kube.get(kind, namespace, name, required_api=required_api)
            self.cache.observe(obj)
        return obj

    def read_list(self, kind: Kind, namespace: str | None = None,
                  label_selector: str | None = None) -> list[dict[str, Any]]:
        if self.cache is None or not self.cache.watches(kind):
            return self.kube.list(kind, namespace, label_selector)
        return self.cache.list(kind, namespace, label_selector)

    def _written(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A write's answer goes into the cache, so the next reconcile starts from it."""
        if self.cache is not None:
            self.cache.observe(obj)
        return obj

    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """None when the app no longer exists, or is going with its namespace."""
        body = self.read(FASTAPIAPP, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        outcome = Outcome()
        app: FastAPIApp | None = None
        deployment = certificate = None
        certificate_problem: str | None = None
        certificate_value: ConditionValue | None = None
        routing = ROUTED_BY_INGRESS
        tls = False
        url = None
        try:
            try:
                app = FastAPIApp.model_validate(body)
            except ValidationError as error:
                raise InvalidSpec(describe_validation_error(error)) from None
            gateways = self.gateways(app)
            classes = self.ingress_classes() if app.spec.ingress is not None and not gateways else {}
            rendered = render_app(app, self.settings, classes, gateways)
            plan = rendered.plan
            tls, url = plan.tls, plan.url
            objects = self._sync_children(app, rendered.manifests, plan.referenced_issuer, outcome,
                                          rendered.migration, contested=reported_reason(body) == Conflict.reason)
            deployment = objects.get((DEPLOYMENT, name))
            if plan.gateway is not None:
                routing = self._gateway_readiness(app, plan, rendered.manifests, objects)
                if tls and not plan.gateway.own_listeners:
                    certificate_value = CERTIFICATE_AT_GATEWAY
                elif tls:
                    certificate = objects.get((CERTIFICATE, gateway_tls_name(name)))
            elif tls:
                certificate = self.read(CERTIFICATE, namespace, tls_secret_name(name))
                certificate_problem = foreign_certificate(certificate, objects.get((INGRESS, name)),
                                                          served_hosts(app), tls_secret_name(name))
        except ReconcileError as error:
            outcome.error = error
        except ApiException as error:
            if is_namespace_terminating(error):
                return None
            outcome.error = ReconcileError(f"the API server answered {error.status}: {api_message(error)}")
        if deployment is None and app is not None:
            live = self.read(DEPLOYMENT, namespace, name)
            deployment = live if live and is_controlled_by(live, body["metadata"]["uid"]) else None

        self._post_events(body, outcome, routing)
        self._write_status(body, outcome, deployment=deployment, certificate=certificate,
                           certificate_problem=certificate_problem, tls=tls, url=url, routing=routing,
                           certificate_value=certificate_value)
        return outcome

    def gateways(self, app: FastAPIApp) -> Gateways:
        """The Gateway the app's routes attach to, read (never written); empty for an Ingress app,
        and for a Gateway that does not exist (which plan_app reports)."""
        requested = requested_gateway(app, self.settings)
        if requested is None:
            return {}
        key, _ = requested
        gateway = self.read(GATEWAY, key[0], key[1], required_api=True)
        return {key: GatewayFacts.from_object(gateway)} if gateway is not None else {}

    @staticmethod
    def _gateway_readiness(app: FastAPIApp, plan: Plan, manifests: list[dict[str, Any]],
                           objects: dict[tuple[Kind, str], dict[str, Any]]) -> ConditionValue:
        assert plan.gateway is not None
        routes = [objects.get((HTTP_ROUTE, m["metadata"]["name"])) for m in manifests if kind_of(m) is HTTP_ROUTE]
        own = plan.gateway.own_listeners
        return gateway_readiness(routes, objects.get((LISTENER_SET, app.name)), own_listeners=own,
                                 refusal=plan.gateway.facts.listener_sets_refusal(app.namespace) if own else None)

    def _sync_children(self, app: FastAPIApp, manifests: list[dict[str, Any]], referenced_issuer: str | None,
                       outcome: Outcome, migration: dict[str, Any] | None = None, contested: bool = False,
                       ) -> dict[tuple[Kind, str], dict[str, Any]]:
        """Make every child say exactly what `manifests` say; return the children as they are now.
        With a `migration` Job, the Deployment's pod template changes only once the Job succeeded;
        until then `outcome.error` says why it waits. An app `contested` (in Conflict at its last
        reconcile) asks the API server about every child the cache lacks before writing, so its
        retries never make and undo the children that come before the taken one."""
        uid = app.metadata.uid or ""
        desired_keys = {(kind_of(m), m["metadata"]["name"]) for m in manifests}

        # Read everything first, from the cache; refuse what can be refused before writing
        # anything. The cache holds only the operator's own children, so a name someone else
        # took is found out by the create-only apply that makes a missing child (_make_child).
        def look(key: tuple[Kind, str]) -> dict[str, Any] | None:
            desired = key in desired_keys
            # A kind the cache found missing may have been installed since: the API server says.
            installed_since = desired and self.cache is not None and self.cache.api_missing(key[0])
            return self.read(key[0], app.namespace, key[1], required_api=desired, confirm_absence=installed_since)

        live: dict[tuple[Kind, str], dict[str, Any] | None] = {key: look(key) for key in possible_children(app.name)}
        if contested:
            for key in desired_keys:
                if live.get(key) is None and key[0] is not CLUSTER_ISSUER:
                    live[key] = self.read(key[0], app.namespace, key[1], required_api=True, confirm_absence=True)
        for manifest in manifests:
            kind, child_name = kind_of(manifest), manifest["metadata"]["name"]
            if kind is CLUSTER_ISSUER:
                live[(kind, child_name)] = self.read(kind, None, child_name)
        if referenced_issuer:
            if self.read(CLUSTER_ISSUER, None, referenced_issuer, required_api=True) is None:
                raise InvalidSpec(
                    f"spec.tls.clusterIssuer: ClusterIssuer {referenced_issuer!r} does not exist: create it, "
                    f"or use spec.tls.acme to let the operator manage one"
                )
        conflicts = [
            _describe(kind, child_name, app.namespace)
            for (kind, child_name), obj in live.items()
            if obj is not None and (kind, child_name) in desired_keys and not (
                is_operator_issuer(obj) if kind is CLUSTER_ISSUER else is_controlled_by(obj, uid)
            )
        ]
        if conflicts:
            raise taken(conflicts)

        jobs = [job for job in self.read_list(JOB, app.namespace, migration_selector(app.name))
                if is_controlled_by(job, uid)]
        deployment_key = (DEPLOYMENT, app.name)
        held: ReconcileError | None = None
        new_job = None
        desired_deployment = next(m for m in manifests if kind_of(m) is DEPLOYMENT)
        if migration is not None and changes_pod_template(desired_deployment, live.get(deployment_key)):
            job = next((j for j in jobs if j["metadata"]["name"] == migration["metadata"]["name"]), None)
            new_job = migration if job is None else None
            held = migration_hold(app, job or migration)

        changed = [m for m in manifests if needs_apply(m, live.get((kind_of(m), m["metadata"]["name"])))]
        if new_job is not None:
            # A Job is created, never applied, and starts running at once: its pod is checked first.
            self._refused_as_invalid(new_job, lambda: self.kube.create(new_job, dry_run=True))

        self._claim_hosts(app)
        if new_job is not None:
            self._create_migration_job(app, new_job, outcome)

        current: dict[tuple[Kind, str], dict[str, Any]] = {k: v for k, v in live.items() if v is not None}
        made: list[Made] = []
        # The Deployment is written first. It alone carries what the schema cannot fully check
        # (env names, commands, quantities), so when the API server refuses it nothing else has
        # been written, and no dry run is needed. Every other child is made of fields the schema
        # checks: the fuzz tests render thousands of specs and the API server accepts them all.
        # The rest follow one by one in the rendered order, so what a child names (a Middleware
        # an Ingress uses) exists before it does.
        for manifest in sorted(manifests, key=lambda m: kind_of(m) is not DEPLOYMENT):
            key = (kind_of(manifest), manifest["metadata"]["name"])
            if key == deployment_key and held is not None:
                continue  # the old pods keep serving while the migration runs or after it failed
            if key[0] is CLUSTER_ISSUER:
                result = self._ensure_issuer(manifest)
                if result is not None:
                    outcome.changes.append(f"{'Created' if live.get(key) is None else 'Updated'} "
                                           f"{_describe(key[0], key[1], None)}")
                    current[key] = result
                continue
            if manifest in changed and live.get(key) is None:
                current[key] = self._make_child(app, manifest, made, outcome)
            elif manifest in changed:
                if key[0] is DEPLOYMENT:
                    self._hand_replicas_to_autoscaler(manifest, live.get(key))
                current[key] = self._written(self._refused_as_invalid(
                    manifest, lambda: self.kube.apply(manifest, uid=_uid(live.get(key)))))
                outcome.changes.append(f"Updated {_describe(key[0], key[1], app.namespace)}")
            current[key] = self._revert_hand_edits(manifest, current[key], outcome)

        for (kind, child_name), obj in live.items():
            if obj is not None and (kind, child_name) not in desired_keys and kind is not CLUSTER_ISSUER \
                    and is_controlled_by(obj, uid):
                self.kube.delete(kind, app.namespace, child_name, uid=_uid(obj))
                current.pop((kind, child_name), None)
                outcome.changes.append(f"Deleted {_describe(kind, child_name, app.namespace)}")
        self._prune_migration_jobs(app, jobs, migration, outcome)
        outcome.error = held
        return current

    def _make_child(self, app: FastAPIApp, manifest: dict[str, Any], made: list[Made],
                    outcome: Outcome) -> dict[str, Any]:
        """Make a child the cache does not hold, create-only: a name taken by an object the
        operator has not seen (someone else's, or its own that the watch has not delivered yet)
        is refused by the API server, then read. Someone else's is a Conflict, and the children
        this reconcile made before it are deleted again, so no half-made set stays behind."""
        kind, name = kind_of(manifest), manifest["metadata"]["name"]
        described = _describe(kind, name, app.namespace)
        try:
            child = self._refused_as_invalid(manifest, lambda: self.kube.apply(manifest, create_only=True))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(kind, app.namespace, name)
            if existing is None:
                raise ReconcileError(f"{described} was deleted while the operator made it; looking again") from None
            if not is_controlled_by(existing, app.metadata.uid or ""):
                for earlier in reversed(made):
                    self.kube.delete(earlier.kind, app.namespace, earlier.name, uid=earlier.uid)
                    outcome.changes.remove(earlier.change)
                raise taken([described]) from None
            child = self._refused_as_invalid(manifest, lambda: self.kube.apply(manifest, uid=_uid(existing)))
            change = f"Updated {described}"
        else:
            change = f"Created {described}"
            made.append(Made(kind, name, _uid(child) or "", change))
        outcome.changes.append(change)
        return self._written(child)

    @staticmethod
    def _refused_as_invalid(manifest: dict[str, Any], write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What the schema could not catch (an env var the core API rejects, ...) is the spec's fault."""
        try:
            return write()
        except ApiException as error:
            if is_replaced(error):
                raise ReconcileError(f"{manifest['kind']} {manifest['metadata']['name']} was deleted and made "
                                     f"again while the operator read it; looking again") from None
            if error.status not in (400, 422) and not is_unbuildable_apply(error):
                raise
            raise InvalidSpec(
                f"the API server rejects the {manifest['kind']} this spec makes: {api_message(error)}"
            ) from None

    def _create_migration_job(self, app: FastAPIApp, job: dict[str, Any], outcome: Outcome) -> None:
        """Create, never apply: a Job of that name that is not this app's is a conflict, not ours to take."""
        name = job["metadata"]["name"]
        try:
            self._written(self.kube.create(job))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(JOB, app.namespace, name)
            if existing is None or not is_controlled_by(existing, app.metadata.uid or ""):
                raise Conflict(f"Job {app.namespace}/{name} already exists and is not owned by this FastAPIApp: "
                               f"delete or rename it") from None
            return
        outcome.changes.append(f"Created {_describe(JOB, name, app.namespace)}: runs preStart "
                               f"{', '.join(step_names(job))} once, before the new version's pods start")

    def _prune_migration_jobs(self, app: FastAPIApp, jobs: list[dict[str, Any]], migration: dict[str, Any] | None,
                              outcome: Outcome) -> None:
        """Keep the current Job and the newest finished ones for their logs; a Job still running is
        never cut short (a migration stopped halfway is worse than one that finishes)."""
        current = migration["metadata"]["name"] if migration else None
        finished = sorted((job for job in jobs if job["metadata"]["name"] != current and job_finished(job)),
                          key=lambda job: job["metadata"]["creationTimestamp"], reverse=True)
        keep = KEPT_MIGRATION_JOBS - 1 if migration else 0
        for job in finished[keep:]:
            if self.kube.delete(JOB, app.namespace, job["metadata"]["name"]):
                outcome.changes.append(f"Deleted {_describe(JOB, job['metadata']['name'], app.namespace)}: "
                                       f"an older migration")

    def _ensure_issuer(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the shared ClusterIssuer if it is missing or differs; None when it was right."""
        with self.shared_objects_lock:
            live = self.read(CLUSTER_ISSUER, None, manifest["metadata"]["name"], required_api=True,
                             confirm_absence=True)
            if live is not None and not is_operator_issuer(live):
                raise Conflict(f"ClusterIssuer {manifest['metadata']['name']} already exists and was not made "
                               f"by fastapi-operator: delete it, or set spec.tls.clusterIssuer to use it as is")
            if not needs_apply(manifest, live):
                return None
            return self._written(self.kube.apply(manifest, uid=_uid(live)))

    def _hand_replicas_to_autoscaler(self, desired: dict[str, Any], live: dict[str, Any] | None) -> None:
        """Before the operator stops setting spec.replicas, a second manager sets the same value,
        so the field outlives the operator's apply instead of being reset to 1 until the
        autoscaler acts (11 s of a single pod, measured before this existed)."""
        if live is None or "replicas" in desired["spec"]:
            return
        if "f:replicas" not in applied_by(live, FIELD_MANAGER).get("f:spec", {}):
            return
        metadata = live["metadata"]
        self.kube.apply({
            "apiVersion": desired["apiVersion"], "kind": desired["kind"],
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "spec": {"replicas": live["spec"].get("replicas", 1)},
        }, field_manager=AUTOSCALER_HANDOFF_FIELD_MANAGER)

    def _revert_hand_edits(self, desired: dict[str, Any], child: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        """Remove what other managers added to the parts of the child that are the operator's
        alone (guarded.py). The patch only applies to the version that was read."""
        kind = kind_of(desired)
        for attempt in range(2):
            found = foreign_fields(desired, child, FIELD_MANAGER, lambda path: is_guarded(kind.kind, path))
            if not found:
                return child
            metadata = child["metadata"]
            try:
                result = self._written(self.kube.json_patch(kind, metadata.get("namespace"), metadata["name"],
                                                            removal_patch(found, metadata["resourceVersion"])))
            except ApiException as error:
                # Changed since it was read (the test op failed): read it again, once.
                if error.status not in (409, 422) or attempt:
                    raise
                child = self.kube.get(kind, metadata.get("namespace"), metadata["name"]) or child
                continue
            managers = sorted({m for f in found for m in f.managers})
            outcome.changes.append(
                f"Reverted {_describe(kind, metadata['name'], metadata.get('namespace'))}: removed "
                f"{', '.join(f.dotted for f in found)} (set by {', '.join(managers)}; these fields are the "
                f"operator's, change the FastAPIApp instead)")
            return result
        return child

    def _claim_hosts(self, app: FastAPIApp) -> None:
        """Each host belongs to the namespace whose app served it first (or that an admin
        assigned it to with a HostClaim): an app elsewhere gets Conflict, and nothing is made."""
        hosts = served_hosts(app)
        if not hosts:
            return
        with self.shared_objects_lock:
            # No confirmation needed: a claim is created, never applied, so a stale cache meets a 409.
            claims = {host: self.read(HOST_CLAIM, None, host, required_api=True) for host in hosts}
            if not self._foreign_claims(app, claims):
                for host, claim in claims.items():
                    if claim is None:
                        try:
                            claims[host] = self._written(self.kube.create(render_host_claim(app, host, self.scope)))
                        except ApiException as error:
                            if error.status != 409:
                                raise
                            claims[host] = self.kube.get(HOST_CLAIM, None, host)
        taken = self._foreign_claims(app, claims)
        if taken:
            raise Conflict(
                "; ".join(taken) + ": only FastAPIApps in the claiming namespace may serve a host. Use another "
                "host, or have an admin release it (`kubectl delete hostclaim <host>`) or assign it to "
                f"namespace {app.namespace} by editing the HostClaim's spec.namespace"
            )

    @staticmethod
    def _foreign_claims(app: FastAPIApp, claims: dict[str, dict[str, Any] | None]) -> list[str]:
        taken = []
        for host, claim in claims.items():
            if claim is None or claim["spec"]["namespace"] == app.namespace:
                continue
            by = (claim["metadata"].get("annotations") or {}).get(ANNOTATION_CLAIMED_BY)
            owner = f"FastAPIApp {by}" if by else f"namespace {claim['spec']['namespace']}"
            taken.append(f"host {host} is claimed by {owner} (HostClaim {host}, namespace "
                         f"{claim['spec']['namespace']})")
        return taken

    def _post_events(self, body: dict[str, Any], outcome: Outcome, routing: ConditionValue) -> None:
        metadata = body["metadata"]
        for change in outcome.changes:
            log.info(change, extra=app_context(metadata))
        events = [("Normal", verb, f"{verb} {'; '.join(objects)}") for verb, objects in by_verb(outcome.changes)]
        # One Warning per distinct problem, not one per retry: the condition already holds it.
        conditions = body.get("status", {}).get("conditions", [])
        previous = next((c for c in conditions if c.get("type") == RECONCILED), {})
        error = outcome.error
        if error is not None and (previous.get("reason"), previous.get("message")) != (error.reason, error.message):
            level = logging.WARNING if error.event_type == "Warning" else logging.INFO
            log.log(level, error.message, extra={**app_context(metadata), "reason": error.reason})
            events.append((error.event_type, error.reason, error.message))
        # A Gateway that refuses the app's route or listeners: Ready quotes it, and so does one Warning.
        previous_ready = next((c for c in conditions if c.get("type") == READY), {})
        if routing.status == "False" and (previous_ready.get("reason"), previous_ready.get("message")) != (
                routing.reason, routing.message):
            log.warning(routing.message, extra={**app_context(metadata), "reason": routing.reason})
            events.append(("Warning", routing.reason, routing.message))
        for event_type, reason, message in events:
            try:
                self.kube.post_event(body, event_type, reason, message)
            except ApiException as failure:
                # Events are a courtesy: a terminating namespace refuses them, and that must
                # not fail the reconcile that the status already reports.
                log.info(f"Event not recorded: {api_message(failure)}", extra=app_context(metadata))

    def _write_status(self, body: dict[str, Any], outcome: Outcome, *, deployment: dict[str, Any] | None,
                      certificate: dict[str, Any] | None, certificate_problem: str | None, tls: bool,
                      url: str | None, routing: ConditionValue, certificate_value: ConditionValue | None) -> None:
        metadata = body["metadata"]
        old = body.get("status") or {}
        new = compute_status(
            generation=metadata.get("generation"), url=url, selector=selector_string(metadata["name"]),
            deployment=deployment, tls=tls, certificate=certificate, certificate_problem=certificate_problem,
            error=outcome.error, previous=old, routing=routing, certificate_value=certificate_value,
        )
        if not status_changed(new, old):
            return
        # A merge patch keeps keys it does not mention: clear the ones that no longer apply.
        patch = {**{key: None for key in old if key not in new}, **new}
        try:
            result = self._written(self.kube.patch_status(metadata["namespace"], metadata["name"], patch))
        except ApiException as error:
            if error.status == 404:  # deleted while we reconciled: nothing to report on
                return
            raise
        outcome.status_resource_version = result["metadata"]["resourceVersion"]

    def list_apps(self) -> list[dict[str, Any]]:
        namespaces = self.settings.namespaces or [None]
        apps = [app for ns in namespaces for app in self.read_list(FASTAPIAPP, ns)]
        return [app for app in apps if not app["metadata"].get("deletionTimestamp")]

    def ingress_classes(self) -> IngressClasses:
        return {facts.name: facts for facts in map(IngressClassFacts.from_object, self.read_list(INGRESS_CLASS))}

    def issuers_in_use(self, apps: Iterable[FastAPIApp]) -> set[str]:
        """Issuers the operator makes for these apps, and any an app names in spec.tls.clusterIssuer."""
        used = set()
        classes = self.ingress_classes()
        for app in apps:
            try:
                # A Gateway app's issuer is named after the Gateway alone, so its listeners need not be read.
                plan = plan_app(app, self.settings, classes, gateways=None)
            except ReconcileError:
                continue
            if plan.issuer_name is not None:
                used.add(plan.issuer_name)
        return used

    def valid_apps(self) -> list[FastAPIApp]:
        apps = []
        for body in self.list_apps():
            try:
                apps.append(FastAPIApp.model_validate(body))
            except ValidationError:
                continue
        return apps

    def _collect(self, kind: Kind, selector: str,
                 users: Callable[[list[FastAPIApp]], Callable[[dict[str, Any]], bool]], why: str) -> list[str]:
        """Delete this install's objects of `kind` that no app in its scope uses, each only at the
        resourceVersion that was judged unused. The lock keeps this process's reconciles from
        relying on an object between the check and the delete; the precondition covers
        every other writer."""
        deleted = []
        with self.shared_objects_lock:
            is_used = users(self.valid_apps())
            for obj in self.read_list(kind, label_selector=selector):
                metadata = obj["metadata"]
                if is_used(obj):
                    continue
                if self.kube.delete(kind, None, metadata["name"], resource_version=metadata["resourceVersion"]):
                    deleted.append(metadata["name"])
                    log.info(f"Deleted {kind.kind} {metadata['name']}: {why}")
        return deleted

    def collect_unused_issuers(self) -> list[str]:
        """Cluster-scoped issuers can't be owned by namespaced apps, so they are reference-counted
        from the apps that exist now: no finalizer, so an app never waits on a stopped operator.
        Only this install's issuers are candidates: another install's apps are not visible here."""
        selector = (f"{LABEL_MANAGED_BY}={OPERATOR_NAME},{LABEL_COMPONENT}={ACME_ISSUER_COMPONENT},"
                    f"{LABEL_SCOPE}={self.scope}")
        def users(apps: list[FastAPIApp]) -> Callable[[dict[str, Any]], bool]:
            used = self.issuers_in_use(apps)
            return lambda issuer: issuer["metadata"]["name"] in used

        return self._collect(CLUSTER_ISSUER, selector, users, "no FastAPIApp uses it")

    def collect_unused_host_claims(self) -> list[str]:
        """A claim the operator made goes when no app in its namespace serves the host. Claims an
        admin made (no managed-by label) stay until the admin deletes them, and a
        namespace-restricted install only judges claims on its own namespaces."""
        selector = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"

        def users(apps: list[FastAPIApp]) -> Callable[[dict[str, Any]], bool]:
            served = {(app.namespace, host) for app in apps for host in served_hosts(app)}

            def is_used(claim: dict[str, Any]) -> bool:
                namespace = claim["spec"]["namespace"]
                if self.settings.namespaces and namespace not in self.settings.namespaces:
                    return True  # another install's apps: not this one's to judge
                return (namespace, claim["metadata"]["name"]) in served
            return is_used

        return self._collect(HOST_CLAIM, selector, users, "no FastAPIApp in its namespace serves the host")

    def collect_unused_shared_objects(self) -> None:
        self.collect_unused_issuers()
        self.collect_unused_host_claims()
