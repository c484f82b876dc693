"""Cluster-scoped objects that apps share: the ClusterIssuers the operator makes and the
HostClaims that give each host to one namespace. Made by reconciles, collected when unused."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api import FastAPIApp
from ..errors import Conflict, ReconcileError
from ..kube import CERTIFICATE, CLUSTER_ISSUER, FASTAPIAPP, HOST_CLAIM, INGRESS, INGRESS_CLASS, Kind, Kube
from ..meta import (
    ANNOTATION_CLAIMED_BY, CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_SCOPE,
    OPERATOR_NAME,
)
from ..compare import needs_apply
from ..render.hostclaim import render_host_claim
from ..render.ingress_class import IngressClassFacts, IngressClasses
from ..render.issuer import ACME_ISSUER_COMPONENT
from ..render.plan import plan_app
from ..settings import Settings
from .children import ChildWriter, uid_of
from .reads import Reads

log = logging.getLogger("fastapi_operator.reconcile")


def is_operator_issuer(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and labels.get(LABEL_COMPONENT) == ACME_ISSUER_COMPONENT


def served_hosts(app: FastAPIApp) -> list[str]:
    return sorted(set(app.spec.ingress.hosts)) if app.spec.ingress is not None else []


def stored_hosts(body: dict[str, Any]) -> list[str]:
    """The hosts an app's stored spec names, read raw: an app the model refuses (the schema let
    something through the model does not) still holds the hosts its Ingress serves."""
    ingress = (body.get("spec") or {}).get("ingress") or {}
    hosts = ingress.get("hosts") if isinstance(ingress, dict) else None
    return [host for host in hosts or [] if isinstance(host, str)]


def foreign_claims(app: FastAPIApp, claims: dict[str, dict[str, Any] | None], names_owner: bool = False) -> list[str]:
    """Hosts another namespace holds; who holds them is said only when the platform allows it
    (setting conflict_names_owner): one tenant learns nothing of another's apps by default."""
    found = []
    for host, claim in claims.items():
        if claim is None or claim["spec"]["namespace"] == app.namespace:
            continue
        if names_owner:
            by = (claim["metadata"].get("annotations") or {}).get(ANNOTATION_CLAIMED_BY)
            owner = f"FastAPIApp {by}" if by else f"namespace {claim['spec']['namespace']}"
            found.append(f"host {host} is claimed by {owner} (HostClaim {host}, namespace "
                         f"{claim['spec']['namespace']})")
        else:
            found.append(f"host {host} is claimed by another namespace (HostClaim {host})")
    return found


def delete_as_judged(kube: Kube, kind: Kind, judged: dict[str, Any]) -> bool:
    """Delete at the judged resourceVersion. A cache a moment behind a status write (cert-manager
    registering an issuer's ACME account) has an older one: the API server's copy is read, and
    deleted at its version if it still says what was judged (spec and labels); any other change
    keeps it for the next collection."""
    name, version = judged["metadata"]["name"], judged["metadata"]["resourceVersion"]
    if kube.delete(kind, None, name, resource_version=version):
        return True
    current = kube.get(kind, None, name)
    if current is None or current["metadata"]["resourceVersion"] == version:
        return False
    same = (current.get("spec") == judged.get("spec")
            and current["metadata"].get("labels") == judged["metadata"].get("labels"))
    return same and kube.delete(kind, None, name, resource_version=current["metadata"]["resourceVersion"])


def issuers_of_children(reads: Reads, owners: set[str]) -> set[str]:
    """The ClusterIssuers the Ingresses and Certificates of these apps (uids) name."""
    def owned(obj: dict[str, Any]) -> bool:
        return any(ref.get("uid") in owners for ref in obj["metadata"].get("ownerReferences") or [])

    managed = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"
    named = {name for ingress in reads.list(INGRESS, label_selector=managed) if owned(ingress)
             and (name := (ingress["metadata"].get("annotations") or {}).get(CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION))}
    return named | {ref["name"] for certificate in reads.list(CERTIFICATE, label_selector=managed)
                    if owned(certificate) and (ref := (certificate.get("spec") or {}).get("issuerRef") or {}).get(
                        "kind") == "ClusterIssuer" and ref.get("name")}


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
        # The Gateways an app's routes attach to, as its reconcile reads them (the Reconciler's).
        self.gateways: Callable[[FastAPIApp], Any] = lambda app: None

    def ensure_issuer(self, manifest: dict[str, Any], writer: ChildWriter) -> tuple[dict[str, Any], bool]:
        """The shared ClusterIssuer as it is now, applied if it was missing or differed (the bool),
        with what anyone else added to its spec reverted: it is the operator's alone, like the
        guarded parts of a namespaced child, and the writer's Events say so."""
        with self.lock:
            live = self.reads.get(CLUSTER_ISSUER, None, manifest["metadata"]["name"], required_api=True,
                                  confirm_absence=True)
            if live is not None and not is_operator_issuer(live):
                raise Conflict(f"ClusterIssuer {manifest['metadata']['name']} already exists and was not made "
                               f"by fastapi-operator: delete it, or set spec.tls.clusterIssuer to use it as is")
            applied = needs_apply(manifest, live)
            if applied:
                with self.reads.writing(CLUSTER_ISSUER, None, manifest["metadata"]["name"]):
                    live = self.reads.written(self.kube.apply(manifest, uid=uid_of(live)))
            assert live is not None
            return writer.revert_hand_edits(manifest, live), applied

    def claim_hosts(self, app: FastAPIApp) -> None:
        """Each host belongs to the namespace whose app served it first (or that an admin
        assigned it to with a HostClaim): an app elsewhere gets Conflict, and nothing is made."""
        hosts = served_hosts(app)
        if not hosts:
            return
        with self.lock:
            # No confirmation needed: a claim is created, never applied, so a stale cache meets a 409.
            claims = {host: self.reads.get(HOST_CLAIM, None, host, required_api=True) for host in hosts}
            if not foreign_claims(app, claims, self.settings.conflict_names_owner):
                for host, claim in claims.items():
                    if claim is None:
                        try:
                            with self.reads.writing(HOST_CLAIM, None, host):
                                made = self.kube.create(render_host_claim(app, host, self.scope))
                                claims[host] = self.reads.written(made)
                        except ApiException as error:
                            if error.status != 409:
                                raise
                            claims[host] = self.kube.get(HOST_CLAIM, None, host)
        found = foreign_claims(app, claims, self.settings.conflict_names_owner)
        if found:
            raise Conflict(
                "; ".join(found) + ": only FastAPIApps in the claiming namespace may serve a host. Use another "
                "host, or have an admin release it (`kubectl delete hostclaim <host>`) or assign it to "
                f"namespace {app.namespace} by editing the HostClaim's spec.namespace"
            )

    def hosts_held(self, namespace: str) -> set[str]:
        return {claim["metadata"]["name"] for claim in self.reads.list(HOST_CLAIM)
                if (claim.get("spec") or {}).get("namespace") == namespace}

    # Collection: cluster-scoped objects can't be owned by namespaced apps, so they are
    # reference-counted from the apps that exist now, with no finalizer, so an app never waits
    # on a stopped operator.

    def list_apps(self) -> list[dict[str, Any]]:
        namespaces = self.settings.namespaces or [None]
        apps = [app for ns in namespaces for app in self.reads.list(FASTAPIAPP, ns)]
        return [app for app in apps if not app["metadata"].get("deletionTimestamp")]


    def ingress_classes(self) -> IngressClasses:
        return {facts.name: facts for facts in map(IngressClassFacts.from_object, self.reads.list(INGRESS_CLASS))}

    def issuers_in_use(self, bodies: list[dict[str, Any]], candidates: set[str]) -> set[str]:
        """Of the candidates, the issuers the operator makes for the apps that exist, any an app
        names in spec.tls.clusterIssuer, and, for an app whose plan fails now (a spec the model
        refuses, a cluster-wide problem such as two default IngressClasses), any its Ingresses or
        Certificates still name: it keeps the issuer its children were made with. An app that
        plans is judged by its plan alone, so an issuer it moved away from goes at once. The look
        ends once every candidate is in use: planning every app is the cost of a look."""
        used: set[str] = set()
        unplanned: set[str] = set()
        classes = self.ingress_classes()
        for body in bodies:
            try:
                app = FastAPIApp.model_validate(body)
                # A Gateway app's issuer name needs its listeners: read them, as its reconcile does.
                plan = plan_app(app, self.settings, classes, gateways=self.gateways(app))
            except (ValidationError, ReconcileError):
                unplanned.add(body["metadata"].get("uid"))
                continue
            if plan.issuer_name in candidates:
                used.add(plan.issuer_name)
                if used == candidates:
                    return used
        return used | (issuers_of_children(self.reads, unplanned) & candidates) if unplanned else used

    def _collect(self, kind: Kind, selector: str, users: Callable[[list[dict[str, Any]], list[dict[str, Any]]],
                 Callable[[dict[str, Any]], bool]], why: str) -> list[str]:
        """Delete this install's objects of `kind` that no app in its scope uses, each only at the
        resourceVersion that was judged unused. The apps are judged only when there is something
        to delete. The lock keeps this process's reconciles from relying on an object between the
        check and the delete; the precondition covers every other writer."""
        deleted: list[str] = []
        with self.lock:
            candidates = self.reads.list(kind, label_selector=selector)
            if not candidates:
                return deleted
            is_used = users(self.list_apps(), candidates)
            for obj in candidates:
                metadata = obj["metadata"]
                if is_used(obj):
                    continue
                if delete_as_judged(self.kube, kind, obj):
                    deleted.append(metadata["name"])
                    log.info(f"Deleted {kind.kind} {metadata['name']}: {why}")
        return deleted

    def collect_unused_issuers(self) -> list[str]:
        """Only this install's issuers are candidates: another install's apps are not visible here."""
        selector = (f"{LABEL_MANAGED_BY}={OPERATOR_NAME},{LABEL_COMPONENT}={ACME_ISSUER_COMPONENT},"
                    f"{LABEL_SCOPE}={self.scope}")

        def users(apps: list[dict[str, Any]], issuers: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
            used = self.issuers_in_use(apps, {issuer["metadata"]["name"] for issuer in issuers})
            return lambda issuer: issuer["metadata"]["name"] in used

        return self._collect(CLUSTER_ISSUER, selector, users, "no FastAPIApp uses it")

    def collect_unused_host_claims(self) -> list[str]:
        """A claim the operator made goes when no app in its namespace serves the host. Claims an
        admin made (no managed-by label) stay until the admin deletes them, and a
        namespace-restricted install only judges claims on its own namespaces."""
        selector = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"

        def users(apps: list[dict[str, Any]], _claims: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
            served = {(app["metadata"]["namespace"], host) for app in apps for host in stored_hosts(app)}

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
