"""kopf runs the operator's life (startup, cleanup, the liveness endpoint); the cache's watches
(cache.py) feed the work queue. Every change to an app, a child or an object an app depends on
queues the apps it concerns.

No create/update/delete handlers and no finalizers: those make kopf write bookkeeping
annotations on the FastAPIApp, and a reconcile that has nothing to do must write nothing.
Level-based instead: the queue's reconcile compares the whole desired state with the cached one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from typing import Any, Callable, Coroutine

import kopf
from kubernetes.client.exceptions import ApiException

from .api import KIND
from .cache import Cache, watched_sources
from .kinds import OWN_WRITES_NOT_NEWS, STATUS_READ, WATCHED_CHILD_KINDS
from .kube import (
    CERTIFICATE, CLUSTER_ISSUER, FASTAPIAPP, GATEWAY, HOST_CLAIM, INGRESS_CLASS, Kind, Kube, Unreachable,
    api_message, is_away, load_api_client,
)
from .leadership import LeaderElector
from .metrics import COLLECTIONS, LEADER, LEASE, ReadinessClock, StoredState, measured_reconcile, serve
from .reconcile import Reconciler, is_left_alone
from .reconcile.shared import stored_hosts
from .render.gateway import GatewayFacts
from .settings import Settings
from .workqueue import WorkQueue

log = logging.getLogger("fastapi_operator.handlers")
# A child's progress reports within this long make one reconcile of its app: a new
# Deployment's status alone moves three times in its first second, each a status write.
PROGRESS_SETTLE_SECONDS = 0.5
REVISION = "deployment.kubernetes.io/revision"  # set by the Deployment controller
# How long after its Deployment was made a new app's first status may wait for it to be Available:
# one status write instead of two for most new apps (reporting.first_status_wait).
FIRST_STATUS_SETTLE_SECONDS = 3.0
# How long after an app's deletion its shared objects are looked at, with any deleted meanwhile.
COLLECT_SETTLE_SECONDS = 1.0


def _controller_name(obj: dict[str, Any], kind: str) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return ref.get("name")
    return None


def _reports_progress(event_type: str, obj: dict[str, Any]) -> bool:
    """A status update on a spec its controller has already seen (a Deployment's pods coming
    up), not an edit: an edit bumps the generation past what the status has observed. Before its
    first status, a new Deployment's controller marks its revision: its first progress too."""
    if event_type != "MODIFIED":
        return False
    observed = (obj.get("status") or {}).get("observedGeneration")
    if observed is None:
        return obj["metadata"].get("generation") == 1 and REVISION in (obj["metadata"].get("annotations") or {})
    return observed == obj["metadata"].get("generation")


def _ingress(app: dict[str, Any]) -> dict[str, Any]:
    return (app.get("spec") or {}).get("ingress") or {}


def routes_through(app: dict[str, Any], gateway: tuple[str, str], default_gateway: str | None) -> bool:
    """Does the stored app attach its routes to `gateway` (namespace, name)? Its own
    spec.ingress.gateway, or the operator's default for an app that names no IngressClass (as
    render.gateway.requested_gateway decides, read from the raw spec)."""
    ingress = _ingress(app)
    if not ingress:
        return False
    ref = ingress.get("gateway")
    if ref:
        return (ref.get("namespace") or app["metadata"]["namespace"], ref.get("name")) == gateway
    return not ingress.get("className") and default_gateway == f"{gateway[0]}/{gateway[1]}"


class GatewayChanges:
    """What the apps read from each Gateway (its listeners, which ListenerSets it allows, its
    proxy's namespace), so that a change altering none of it queues nothing: N routes attaching to
    one Gateway rewrite its status (attachedRoutes) N times, and each used to queue every app."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], GatewayFacts | None] = {}

    def seed(self, gateways: list[dict[str, Any]]) -> None:
        self.facts = {(g["metadata"]["namespace"], g["metadata"]["name"]): GatewayFacts.from_object(g)
                      for g in gateways}

    def changed(self, event_type: str, obj: dict[str, Any]) -> tuple[str, str] | None:
        """The Gateway's (namespace, name) when what the apps read from it changed, else None."""
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        facts = None if event_type == "DELETED" else GatewayFacts.from_object(obj)
        if key in self.facts and self.facts[key] == facts:
            return None
        self.facts[key] = facts
        return key


class AppsByHost:
    """The apps that serve each host, kept from the apps' watch events, so that a HostClaim's
    change queues them without a look at every app: a namespace of N apps deleted releases N
    claims, and N looks at N apps were most of what the deletion cost."""

    def __init__(self) -> None:
        self.apps: dict[str, set[tuple[str, str]]] = {}
        self.hosts: dict[tuple[str, str], frozenset[str]] = {}

    def seed(self, apps: list[dict[str, Any]]) -> None:
        self.apps, self.hosts = {}, {}
        for app in apps:
            self.update("ADDED", app)

    def update(self, event_type: str, app: dict[str, Any]) -> None:
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        held = self.hosts.pop(key, frozenset())
        served = frozenset() if event_type == "DELETED" else frozenset(stored_hosts(app))
        for host in held - served:
            self.apps[host].discard(key)
            if not self.apps[host]:
                del self.apps[host]
        for host in served - held:
            self.apps.setdefault(host, set()).add(key)
        if served:
            self.hosts[key] = served

    def serving(self, host: str) -> list[tuple[str, str]]:
        return sorted(self.apps.get(host, ()))


class Changes:
    """The watches' events, passed to `handle` on the thread that has them (a watch's, or a
    reconcile's whose write held them): one at a time, as the event loop did, and one failure
    loses no other."""

    def __init__(self, handle: Callable[[Kind, str, dict[str, Any]], None]) -> None:
        self.handle = handle
        self.lock = threading.Lock()

    def put(self, kind: Kind, event_type: str, obj: dict[str, Any]) -> None:
        try:
            with self.lock:
                self.handle(kind, event_type, obj)
        except Exception:
            log.exception(f"could not handle a watch event of {kind.kind} {obj['metadata'].get('name')}")


class SharedObjectCollection:
    """The looks for ClusterIssuers and HostClaims no app uses any more (reconcile/shared.py),
    made by the leader alone: a standby's view may lag the leader's writes."""

    def __init__(self, reconciler: Reconciler, active: Callable[[], bool],
                 spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.reconciler = reconciler
        self.active = active
        self.spawn = spawn
        self.due = False  # a look is scheduled (soon)

    def soon(self) -> None:
        """After an app's deletion: one look, a moment later, for what it and every app deleted
        with it left behind. A look plans every app, so one per deletion would make deleting a
        namespace of N apps cost N² plans."""
        if self.due:
            return
        self.due = True

        async def later() -> None:
            await asyncio.sleep(COLLECT_SETTLE_SECONDS)
            self.due = False  # a deletion from now on is looked at again
            await self.now()
        self.spawn(later())

    async def now(self) -> None:
        if not self.active():
            return
        COLLECTIONS.inc()
        try:
            await asyncio.to_thread(self.reconciler.collect_unused_shared_objects)
        except Exception:
            log.exception("could not collect unused ClusterIssuers and HostClaims; trying again later")


class Runtime:
    """What the handlers share, kept in kopf's memo."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        # Each watch holds a connection for minutes: a pool of their own, so reconciles never wait.
        sources = watched_sources(settings)
        watches = Kube(load_api_client(len(sources), retries=False))
        kube = Kube(load_api_client(settings.workers))
        self.changes = Changes(self.changed)
        self.cache = Cache(watches, sources, self.changes.put, news_only=OWN_WRITES_NOT_NEWS)
        self.reconciler = Reconciler(kube, settings, self.cache, FIRST_STATUS_SETTLE_SECONDS)
        self.queue = WorkQueue(self._process, settings.workers)
        # Apps whose paced rollout (reconcile/pacing.py) may start now that a place is free.
        self.reconciler.pacer.wake = self.queue.add_each
        self.gateways = GatewayChanges()
        self.apps_by_host = AppsByHost()
        # The resourceVersion of our own last status write per app: its watch event needs no reconcile.
        self.own_status_versions = self.reconciler.reporter.written_versions
        self.readiness = ReadinessClock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.collection = SharedObjectCollection(self.reconciler, lambda: self.active, self._spawn)
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.queue.pause()
            identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
            self.elector = LeaderElector(kube, settings.lease_namespace, identity,
                                         on_started=self._lead, on_stopped=self._stand_by)

    async def begin(self) -> None:
        """Decide nothing before every watch listed once: an empty cache makes shared objects look unused."""
        if self.settings.metrics_port:
            serve(self.settings.metrics_port, StoredState(self.reconciler.list_apps, self.cache.sizes),
                  self.settings.workers)
            LEADER.labels(LEASE).set_function(lambda: 1 if self.active else 0)
        self.cache.start()
        while not await asyncio.to_thread(self.cache.wait_synced, 30):
            log.warning(f"still waiting for the first listing of {', '.join(self.cache.unsynced())}; "
                        f"nothing is reconciled until then")
        log.info("caches filled: reconciling from the watches")
        # What the first listing found is what the apps are reconciled against at startup.
        with self.changes.lock:
            self.gateways.seed(self.cache.list(GATEWAY) if self.cache.watches(GATEWAY) else [])
            self.apps_by_host.seed(self.cache.list(FASTAPIAPP))
        self.queue.start()
        if self.elector is not None:
            self._spawn(self.elector.run())
        else:
            self.queue_every_app("startup")
        await self.resync_forever()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def changed(self, kind: Kind, event_type: str, obj: dict[str, Any]) -> None:
        """Which apps a watched change concerns; they are queued (one change at a time: Changes)."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace")
        if kind is FASTAPIAPP:
            key = (namespace, metadata["name"])
            self.apps_by_host.update(event_type, obj)
            if event_type == "DELETED":
                self.own_status_versions.pop(key, None)
                self.readiness.forget(key)
                self.reconciler.going.discard(metadata.get("uid"))
                self.loop.call_soon_threadsafe(self.collection.soon)
            else:
                self.readiness.seen(key, obj)
                if self.own_status_versions.get(key) != metadata.get("resourceVersion"):
                    self.queue.add(key)
        elif kind is CERTIFICATE:
            # cert-manager's ingress-shim names the Certificate after the TLS secret and makes the
            # app's Ingress (named after the app) its controller; an app's Gateway listeners have a
            # Certificate the app itself controls.
            owner = _controller_name(obj, "Ingress") or _controller_name(obj, KIND)
            if owner:
                self.queue.add((namespace, owner))
        elif kind in WATCHED_CHILD_KINDS:
            # A child edited or deleted: its app now, not at the next resync (unless gone, or going with
            # its namespace). A controller's progress on a spec it saw: once per burst, if the status reads it.
            owner = _controller_name(obj, KIND)
            if owner is None or is_left_alone(self.cache.get(FASTAPIAPP, namespace, owner), self.reconciler.going):
                return
            if not _reports_progress(event_type, obj):
                self.queue.add((namespace, owner))
            elif kind in STATUS_READ:
                self.queue.add_soon((namespace, owner), PROGRESS_SETTLE_SECONDS)
        elif kind is HOST_CLAIM:
            # A claim made, released or reassigned: the apps that serve the host learn whether they may.
            self.queue.add_each(self.apps_by_host.serving(metadata["name"]))
        elif kind is CLUSTER_ISSUER:
            # Deleted or edited by hand, or made by a user for spec.tls.clusterIssuer: any app with
            # an ingress may use it, and the ones that do put it back or move on.
            self.queue_apps(lambda app: bool(_ingress(app)), f"ClusterIssuer {metadata['name']}")
        elif kind is GATEWAY:
            gateway = self.gateways.changed(event_type, obj)
            if gateway:
                self.queue_apps(lambda app: routes_through(app, gateway, self.settings.gateway),
                                f"Gateway {gateway[0]}/{gateway[1]}")
        elif kind is INGRESS_CLASS:
            # An IngressClass can change any app's flavour or admitted namespace (a new default class).
            self.queue_apps(lambda app: True, f"IngressClass {metadata['name']}")

    @property
    def active(self) -> bool:
        """Reconciling and collecting: always, or, with leader election, while holding the Lease."""
        return self.elector is None or self.elector.leading

    async def _lead(self) -> None:
        self.queue.resume()
        self.queue_every_app("leadership taken")
        await self.collection.now()

    async def _stand_by(self) -> None:
        self.queue.pause()

    def _process(self, key: Any) -> bool:
        """On one of the queue's worker threads."""
        with measured_reconcile() as measured:
            try:
                outcome = self.reconciler.reconcile(*key)
            except (Unreachable, ApiException) as failure:
                if not is_away(failure):
                    raise
                # Restarting, or the network: expected, and tried again with backoff.
                said = api_message(failure) if isinstance(failure, ApiException) else failure
                log.warning(f"{key[0]}/{key[1]} not reconciled, the API server is away: {said}")
                measured.failed = True
                return True
            measured.failed = outcome is not None and outcome.retry
        if outcome is None:
            self.own_status_versions.pop(key, None)
            return False
        if outcome.status_held_seconds is not None:  # not needed if a status was written meanwhile
            self.queue.add_after(key, outcome.status_held_seconds, unless=lambda: key in self.own_status_versions)
        return outcome.retry

    def queue_every_app(self, why: str) -> None:
        """A routine check of every app (startup, leadership, resync): behind what changes ask for."""
        self.queue_apps(lambda app: True, why, background=True)

    def queue_apps(self, concerned: Callable[[dict[str, Any]], bool], why: str, background: bool = False) -> None:
        queued = 0
        for app in self.reconciler.list_apps():
            if concerned(app):
                self.queue.add((app["metadata"]["namespace"], app["metadata"]["name"]), background)
                queued += 1
        log.debug(f"{queued} apps queued: {why}")

    async def resync_forever(self) -> None:
        # Issuers and claims left behind by apps deleted while the operator was down go at startup.
        await self.collection.now()
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            self.queue_every_app("resync")
            self.cache.recheck_missing_apis()
            await self.collection.now()


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf would otherwise turn every log line of a handler into a Kubernetes Event: a write.
    settings.posting.enabled = False
    # kopf watches nothing here (the cache does), so it needs no CRD or namespace scanning, nor its RBAC.
    settings.scanning.disabled = True
    runtime = Runtime(memo.settings)
    memo.runtime = runtime
    runtime._spawn(runtime.begin())


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    for task in list(runtime.tasks):
        task.cancel()
    runtime.cache.stop()
    await runtime.queue.stop()
