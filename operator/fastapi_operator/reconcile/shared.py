"""Cluster-scoped objects that apps share: the ClusterIssuers the operator makes and the
HostClaims that give each host to one namespace. Made by reconciles, collected when unused."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api import FastAPIApp
from ..errors import Conflict, ReconcileError
from ..kube import CLUSTER_ISSUER, FASTAPIAPP, HOST_CLAIM, INGRESS_CLASS, Kind
from ..meta import ANNOTATION_CLAIMED_BY, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_SCOPE, OPERATOR_NAME
from ..compare import needs_apply
from ..render.hostclaim import render_host_claim
from ..render.ingress_class import IngressClassFacts, IngressClasses
from ..render.issuer import ACME_ISSUER_COMPONENT
from ..render.plan import plan_app
from ..settings import Settings
from .children import uid_of
from .reads import Reads

log = logging.getLogger("fastapi_operator.reconcile")


def is_operator_issuer(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and labels.get(LABEL_COMPONENT) == ACME_ISSUER_COMPONENT


def served_hosts(app: FastAPIApp) -> list[str]:
    return sorted(set(app.spec.ingress.hosts)) if app.spec.ingress is not None else []


def foreign_claims(app: FastAPIApp, claims: dict[str, dict[str, Any] | None]) -> list[str]:
    found = []
    for host, claim in claims.items():
        if claim is None or claim["spec"]["namespace"] == app.namespace:
            continue
        by = (claim["metadata"].get("annotations") or {}).get(ANNOTATION_CLAIMED_BY)
        owner = f"FastAPIApp {by}" if by else f"namespace {claim['spec']['namespace']}"
        found.append(f"host {host} is claimed by {owner} (HostClaim {host}, namespace {claim['spec']['namespace']})")
    return found


class SharedObjects:
    def __init__(self, reads: Reads, settings: Settings, scope: str) -> None:
        self.reads = reads
        self.kube = reads.kube
        self.settings = settings
        self.scope = scope
        # Holding this lock across "is it used?" and "delete it", and across "does it exist?" and
        # "make it", means a collection can never delete what a reconcile running at the same
        # moment has just decided to rely on.
        self.lock = threading.Lock()

    def ensure_issuer(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the shared ClusterIssuer if it is missing or differs; None when it was right."""
        with self.lock:
            live = self.reads.get(CLUSTER_ISSUER, None, manifest["metadata"]["name"], required_api=True,
                                  confirm_absence=True)
            if live is not None and not is_operator_issuer(live):
                raise Conflict(f"ClusterIssuer {manifest['metadata']['name']} already exists and was not made "
                               f"by fastapi-operator: delete it, or set spec.tls.clusterIssuer to use it as is")
            if not needs_apply(manifest, live):
                return None
            return self.reads.written(self.kube.apply(manifest, uid=uid_of(live)))

    def claim_hosts(self, app: FastAPIApp) -> None:
        """Each host belongs to the namespace whose app served it first (or that an admin
        assigned it to with a HostClaim): an app elsewhere gets Conflict, and nothing is made."""
        hosts = served_hosts(app)
        if not hosts:
            return
        with self.lock:
            # No confirmation needed: a claim is created, never applied, so a stale cache meets a 409.
            claims = {host: self.reads.get(HOST_CLAIM, None, host, required_api=True) for host in hosts}
            if not foreign_claims(app, claims):
                for host, claim in claims.items():
                    if claim is None:
                        try:
                            claims[host] = self.reads.written(self.kube.create(render_host_claim(app, host, self.scope)))
                        except ApiException as error:
                            if error.status != 409:
                                raise
                            claims[host] = self.kube.get(HOST_CLAIM, None, host)
        found = foreign_claims(app, claims)
        if found:
            raise Conflict(
                "; ".join(found) + ": only FastAPIApps in the claiming namespace may serve a host. Use another "
                "host, or have an admin release it (`kubectl delete hostclaim <host>`) or assign it to "
                f"namespace {app.namespace} by editing the HostClaim's spec.namespace"
            )

    # Collection: cluster-scoped objects can't be owned by namespaced apps, so they are
    # reference-counted from the apps that exist now, with no finalizer, so an app never waits
    # on a stopped operator.

    def list_apps(self) -> list[dict[str, Any]]:
        namespaces = self.settings.namespaces or [None]
        apps = [app for ns in namespaces for app in self.reads.list(FASTAPIAPP, ns)]
        return [app for app in apps if not app["metadata"].get("deletionTimestamp")]

    def valid_apps(self) -> list[FastAPIApp]:
        apps = []
        for body in self.list_apps():
            try:
                apps.append(FastAPIApp.model_validate(body))
            except ValidationError:
                continue
        return apps

    def ingress_classes(self) -> IngressClasses:
        return {facts.name: facts for facts in map(IngressClassFacts.from_object, self.reads.list(INGRESS_CLASS))}

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

    def _collect(self, kind: Kind, selector: str,
                 users: Callable[[list[FastAPIApp]], Callable[[dict[str, Any]], bool]], why: str) -> list[str]:
        """Delete this install's objects of `kind` that no app in its scope uses, each only at the
        resourceVersion that was judged unused. The lock keeps this process's reconciles from
        relying on an object between the check and the delete; the precondition covers
        every other writer."""
        deleted = []
        with self.lock:
            is_used = users(self.valid_apps())
            for obj in self.reads.list(kind, label_selector=selector):
                metadata = obj["metadata"]
                if is_used(obj):
                    continue
                if self.kube.delete(kind, None, metadata["name"], resource_version=metadata["resourceVersion"]):
                    deleted.append(metadata["name"])
                    log.info(f"Deleted {kind.kind} {metadata['name']}: {why}")
        return deleted

    def collect_unused_issuers(self) -> list[str]:
        """Only this install's issuers are candidates: another install's apps are not visible here."""
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

    def collect_unused(self) -> None:
        self.collect_unused_issuers()
        self.collect_unused_host_claims()
