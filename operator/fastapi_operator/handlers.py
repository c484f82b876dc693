"""kopf registrations only: every handler turns an event into work-queue keys.

No create/update/delete handlers and no finalizers: those make kopf write bookkeeping
annotations on the FastAPIApp, and a reconcile that has nothing to do must write nothing.
Level-based instead: any event on an app or one of its children queues the app, and the
queue's reconcile compares the whole desired state with the live one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any

import kopf

from .api import GROUP, KIND, PLURAL, VERSION
from .kube import (
    CERTIFICATE, CLUSTER_ISSUER, GATEWAY, HOST_CLAIM, INGRESS_CLASS, WATCHED_CHILD_KINDS, Kube, load_api_client,
)
from .meta import LABEL_MANAGED_BY, OPERATOR_NAME
from .leadership import LeaderElector
from .reconcile import Reconciler
from .settings import Settings
from .workqueue import WorkQueue

log = logging.getLogger("fastapi_operator.handlers")


class Runtime:
    """What the handlers share, kept in kopf's memo."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        kube = Kube(load_api_client())
        self.reconciler = Reconciler(kube, settings)
        self.queue = WorkQueue(self._process, settings.workers)
        # The resourceVersion of our own last status write per app: its watch event needs no reconcile.
        self.own_status_versions: dict[tuple[str, str], str] = {}
        self.resync_task: asyncio.Task[None] | None = None
        self.election_task: asyncio.Task[None] | None = None
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.queue.pause()
            identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
            self.elector = LeaderElector(kube, settings.lease_namespace, identity,
                                         on_started=self._lead, on_stopped=self._stand_by)

    @property
    def active(self) -> bool:
        """Reconciling and collecting: always, or, with leader election, while holding the Lease."""
        return self.elector is None or self.elector.leading

    async def _lead(self) -> None:
        self.queue.resume()
        await self.queue_every_app("leadership taken")
        await self.collect_unused_shared_objects()

    async def _stand_by(self) -> None:
        self.queue.pause()

    async def _process(self, key: Any) -> bool:
        outcome = await asyncio.to_thread(self.reconciler.reconcile, *key)
        if outcome is None:
            self.own_status_versions.pop(key, None)
            return False
        if outcome.status_resource_version:
            self.own_status_versions[key] = outcome.status_resource_version
        return outcome.retry

    async def queue_every_app(self, why: str) -> bool:
        """False when the apps could not be listed (logged); the next resync tries again."""
        try:
            apps = await asyncio.to_thread(self.reconciler.list_apps)
        except Exception:
            log.exception(f"could not list the apps ({why}); the next resync tries again")
            return False
        for app in apps:
            self.queue.add((app["metadata"]["namespace"], app["metadata"]["name"]))
        return True

    async def resync_forever(self) -> None:
        # Issuers and claims left behind by apps deleted while the operator was down go at startup.
        await self.collect_unused_shared_objects()
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            if await self.queue_every_app("resync"):
                await self.collect_unused_shared_objects()

    async def collect_unused_shared_objects(self) -> None:
        if not self.active:
            return  # a standby's view may lag the leader's writes: only the leader deletes
        try:
            await asyncio.to_thread(self.reconciler.collect_unused_shared_objects)
        except Exception:
            log.exception("could not collect unused ClusterIssuers and HostClaims; trying again later")


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf would otherwise turn every log line of a handler into a Kubernetes Event: a write.
    settings.posting.enabled = False
    runtime = Runtime(memo.settings)
    memo.runtime = runtime
    runtime.queue.start()
    runtime.resync_task = asyncio.create_task(runtime.resync_forever())
    if runtime.elector is not None:
        runtime.election_task = asyncio.create_task(runtime.elector.run())


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    for task in (runtime.resync_task, runtime.election_task):
        if task:
            task.cancel()
    await runtime.queue.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def app_changed(event: dict[str, Any], body: kopf.Body, namespace: str, name: str,
                      memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    key = (namespace, name)
    if event["type"] == "DELETED":
        runtime.own_status_versions.pop(key, None)
        await runtime.collect_unused_shared_objects()
        return
    if runtime.own_status_versions.get(key) == body.metadata.get("resourceVersion"):
        return
    runtime.queue.add(key)


def _controller_name(body: kopf.Body, kind: str) -> str | None:
    for ref in body.metadata.get("ownerReferences", []):
        if ref.get("controller") and ref.get("kind") == kind:
            return ref.get("name")
    return None


def child_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A child edited or deleted by someone: its app is reconciled now, not at the next resync."""
    owner = _controller_name(body, KIND)
    if owner:
        memo.runtime.queue.add((namespace, owner))


for _kind in WATCHED_CHILD_KINDS:
    kopf.on.event(_kind.group, _kind.api_version.rpartition("/")[2], _kind.plural,
                  labels={LABEL_MANAGED_BY: OPERATOR_NAME}, id=f"child-{_kind.plural}")(child_changed)


@kopf.on.event(CERTIFICATE.group, "v1", CERTIFICATE.plural)
def certificate_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    # cert-manager's ingress-shim names the Certificate after the TLS secret and makes the
    # app's Ingress (named after the app) its controller; an app's Gateway listeners have a
    # Certificate the app itself controls.
    app_name = _controller_name(body, "Ingress") or _controller_name(body, KIND)
    if app_name:
        memo.runtime.queue.add((namespace, app_name))


async def route_owner_changed(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """An IngressClass or Gateway added, removed, re-annotated or made the default (or a Gateway's
    listeners or allowedListeners changed) can change any app's flavour, admitted namespace,
    routes or readiness: every app is checked now, not at the next resync."""
    if event.get("type") is None:  # kopf's initial listing: every app is queued at startup anyway
        return
    runtime: Runtime = memo.runtime
    await runtime.queue_every_app("an IngressClass or a Gateway changed")


for _kind in (INGRESS_CLASS, GATEWAY):
    kopf.on.event(_kind.group, _kind.api_version.rpartition("/")[2], _kind.plural,
                  id=f"route-owner-{_kind.plural}")(route_owner_changed)


async def shared_object_changed(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """A ClusterIssuer or HostClaim the operator made was edited or deleted by hand. Many apps can
    rely on one, so every app is checked: the ones that use it put it back within seconds."""
    if event.get("type") is None:  # kopf's initial listing: nothing changed
        return
    runtime: Runtime = memo.runtime
    await runtime.queue_every_app("a shared object changed")


for _kind in (CLUSTER_ISSUER, HOST_CLAIM):
    kopf.on.event(_kind.group, _kind.api_version.rpartition("/")[2], _kind.plural,
                  labels={LABEL_MANAGED_BY: OPERATOR_NAME}, id=f"shared-{_kind.plural}")(shared_object_changed)
