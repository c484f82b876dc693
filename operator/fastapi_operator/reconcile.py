"""One reconcile of one FastAPIApp: render, check, apply what differs, delete what is stale,
write status when it changed. Synchronous; the handlers run it in a worker thread.

The order matters for "no half-made set of children": everything that can be decided without
writing (the spec, ownership of every child, the referenced ClusterIssuer) is checked before
the first write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .api import FastAPIApp, describe_validation_error
from .compare import needs_apply
from .errors import Conflict, InvalidSpec, ReconcileError
from .kube import (
    AUTOSCALER, CERTIFICATE, CLUSTER_ISSUER, DEPLOYMENT, FASTAPIAPP, INGRESS, MIDDLEWARE, NETWORK_POLICY, SERVICE,
    Kind, Kube, api_message, is_namespace_terminating, kind_of,
)
from .logs import app_context
from .meta import (
    LABEL_COMPONENT, LABEL_MANAGED_BY, OPERATOR_NAME, redirect_https_middleware_name, redirect_ingress_name,
    selector_string, strip_prefix_middleware_name, tls_secret_name,
)
from .render import render_app
from .render.plan import plan_app
from .render.issuer import ACME_ISSUER_COMPONENT
from .settings import Settings
from .status import RECONCILED, compute_status, status_changed

log = logging.getLogger("fastapi_operator.reconcile")


@dataclass
class Outcome:
    """What a reconcile did; `retry` asks the work queue to come back with backoff."""

    changes: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    status_resource_version: str | None = None

    @property
    def retry(self) -> bool:
        return self.error is not None


def possible_children(app_name: str) -> list[tuple[Kind, str]]:
    """Every namespaced object an app can own, desired or not, so stale ones can be found."""
    return [
        (MIDDLEWARE, strip_prefix_middleware_name(app_name)),
        (MIDDLEWARE, redirect_https_middleware_name(app_name)),
        (SERVICE, app_name),
        (DEPLOYMENT, app_name),
        (INGRESS, app_name),
        (INGRESS, redirect_ingress_name(app_name)),
        (NETWORK_POLICY, app_name),
        (AUTOSCALER, app_name),
    ]


def is_controlled_by(obj: dict[str, Any], app_uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == app_uid
        for ref in obj.get("metadata", {}).get("ownerReferences", [])
    )


def is_operator_issuer(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and labels.get(LABEL_COMPONENT) == ACME_ISSUER_COMPONENT


def _describe(kind: Kind, name: str, namespace: str | None) -> str:
    return f"{kind.kind} {namespace}/{name}" if namespace and kind.namespaced else f"{kind.kind} {name}"


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings

    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """None when the app no longer exists, or is going with its namespace."""
        body = self.kube.get(FASTAPIAPP, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        outcome = Outcome()
        app: FastAPIApp | None = None
        deployment = certificate = None
        tls = False
        url = None
        try:
            try:
                app = FastAPIApp.model_validate(body)
            except ValidationError as error:
                raise InvalidSpec(describe_validation_error(error)) from None
            rendered = render_app(app, self.settings)
            tls, url = rendered.plan.tls, rendered.plan.url
            deployment = self._sync_children(app, rendered.manifests, rendered.plan.referenced_issuer, outcome)
            if tls:
                certificate = self.kube.get(CERTIFICATE, namespace, tls_secret_name(name))
        except ReconcileError as error:
            outcome.error = error
        except ApiException as error:
            if is_namespace_terminating(error):
                return None
            outcome.error = ReconcileError(f"the API server answered {error.status}: {api_message(error)}")
        if deployment is None and app is not None:
            live = self.kube.get(DEPLOYMENT, namespace, name)
            deployment = live if live and is_controlled_by(live, body["metadata"]["uid"]) else None

        self._post_events(body, outcome)
        self._write_status(body, outcome, deployment=deployment, certificate=certificate, tls=tls, url=url)
        return outcome

    def _sync_children(self, app: FastAPIApp, manifests: list[dict[str, Any]], referenced_issuer: str | None,
                       outcome: Outcome) -> dict[str, Any] | None:
        uid = app.metadata.uid or ""
        desired_keys = {(kind_of(m), m["metadata"]["name"]) for m in manifests}

        # Read everything first; refuse before writing anything.
        live: dict[tuple[Kind, str], dict[str, Any] | None] = {}
        for kind, child_name in possible_children(app.name):
            live[(kind, child_name)] = self.kube.get(kind, app.namespace, child_name,
                                                     required_api=(kind, child_name) in desired_keys)
        for manifest in manifests:
            kind, child_name = kind_of(manifest), manifest["metadata"]["name"]
            if kind is CLUSTER_ISSUER:
                live[(kind, child_name)] = self.kube.get(kind, None, child_name, required_api=True)
        conflicts = [
            _describe(kind, child_name, app.namespace)
            for (kind, child_name), obj in live.items()
            if obj is not None and (kind, child_name) in desired_keys and not (
                is_operator_issuer(obj) if kind is CLUSTER_ISSUER else is_controlled_by(obj, uid)
            )
        ]
        if conflicts:
            raise Conflict(
                f"{', '.join(conflicts)} already exist{'s' if len(conflicts) == 1 else ''} and "
                f"{'is' if len(conflicts) == 1 else 'are'} not owned by this FastAPIApp: delete or rename "
                f"{'it' if len(conflicts) == 1 else 'them'}, or give the FastAPIApp another name"
            )
        if referenced_issuer:
            if self.kube.get(CLUSTER_ISSUER, None, referenced_issuer, required_api=True) is None:
                raise InvalidSpec(
                    f"spec.tls.clusterIssuer: ClusterIssuer {referenced_issuer!r} does not exist: create it, "
                    f"or use spec.tls.acme to let the operator manage one"
                )

        changed = [m for m in manifests if needs_apply(m, live.get((kind_of(m), m["metadata"]["name"])))]
        # What the schema could not catch (an env var the core API rejects, ...) fails here,
        # before anything is written.
        for manifest in changed:
            try:
                self.kube.apply(manifest, dry_run=True)
            except ApiException as error:
                if error.status not in (400, 422):
                    raise
                raise InvalidSpec(
                    f"the API server rejects the {manifest['kind']} this spec makes: {api_message(error)}"
                ) from None

        deployment = live.get((DEPLOYMENT, app.name))
        for manifest in changed:
            key = (kind_of(manifest), manifest["metadata"]["name"])
            result = self.kube.apply(manifest)
            verb = "Created" if live.get(key) is None else "Updated"
            outcome.changes.append(f"{verb} {_describe(key[0], key[1], app.namespace)}")
            if key[0] is DEPLOYMENT:
                deployment = result

        for (kind, child_name), obj in live.items():
            if obj is not None and (kind, child_name) not in desired_keys and kind is not CLUSTER_ISSUER \
                    and is_controlled_by(obj, uid):
                self.kube.delete(kind, app.namespace, child_name)
                outcome.changes.append(f"Deleted {_describe(kind, child_name, app.namespace)}")
        return deployment

    def _post_events(self, body: dict[str, Any], outcome: Outcome) -> None:
        metadata = body["metadata"]
        events = [("Normal", change.split(" ", 1)[0], change) for change in outcome.changes]
        for _, _, change in events:
            log.info(change, extra=app_context(metadata))
        # One Warning per distinct problem, not one per retry: the condition already holds it.
        previous = next((c for c in body.get("status", {}).get("conditions", []) if c.get("type") == RECONCILED), {})
        error = outcome.error
        if error is not None and (previous.get("reason"), previous.get("message")) != (error.reason, error.message):
            log.warning(error.message, extra={**app_context(metadata), "reason": error.reason})
            events.append(("Warning", error.reason, error.message))
        for event_type, reason, message in events:
            try:
                self.kube.post_event(body, event_type, reason, message)
            except ApiException as failure:
                # Events are a courtesy: a terminating namespace refuses them, and that must
                # not fail the reconcile that the status already reports.
                log.info(f"Event not recorded: {api_message(failure)}", extra=app_context(metadata))

    def _write_status(self, body: dict[str, Any], outcome: Outcome, *, deployment: dict[str, Any] | None,
                      certificate: dict[str, Any] | None, tls: bool, url: str | None) -> None:
        metadata = body["metadata"]
        old = body.get("status") or {}
        new = compute_status(
            generation=metadata.get("generation"), url=url, selector=selector_string(metadata["name"]),
            deployment=deployment, tls=tls, certificate=certificate, error=outcome.error, previous=old,
        )
        if not status_changed(new, old):
            return
        # A merge patch keeps keys it does not mention: clear the ones that no longer apply.
        patch = {**{key: None for key in old if key not in new}, **new}
        try:
            result = self.kube.patch_status(metadata["namespace"], metadata["name"], patch)
        except ApiException as error:
            if error.status == 404:  # deleted while we reconciled: nothing to report on
                return
            raise
        outcome.status_resource_version = result["metadata"]["resourceVersion"]

    def list_apps(self) -> list[dict[str, Any]]:
        namespaces = self.settings.namespaces or [None]
        apps = [app for ns in namespaces for app in self.kube.list(FASTAPIAPP, ns)]
        return [app for app in apps if not app["metadata"].get("deletionTimestamp")]

    def issuers_in_use(self, apps: Iterable[dict[str, Any]]) -> set[str]:
        used = set()
        for body in apps:
            try:
                plan = plan_app(FastAPIApp.model_validate(body), self.settings)
            except (ValidationError, ReconcileError):
                continue
            if plan.acme is not None:
                used.add(plan.acme.issuer_name)
        return used

    def collect_unused_issuers(self) -> list[str]:
        """Cluster-scoped issuers can't be owned by namespaced apps, so they are reference-counted
        from the apps that exist now: no finalizer, so an app never waits on a stopped operator."""
        used = self.issuers_in_use(self.list_apps())
        deleted = []
        selector = f"{LABEL_MANAGED_BY}={OPERATOR_NAME},{LABEL_COMPONENT}={ACME_ISSUER_COMPONENT}"
        for issuer in self.kube.list(CLUSTER_ISSUER, label_selector=selector):
            issuer_name = issuer["metadata"]["name"]
            if issuer_name not in used:
                self.kube.delete(CLUSTER_ISSUER, None, issuer_name)
                deleted.append(issuer_name)
                log.info(f"Deleted ClusterIssuer {issuer_name}: no FastAPIApp uses it")
        return deleted
