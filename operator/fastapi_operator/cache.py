"""What the operator knows of the cluster between requests: one list-then-watch per kind, the way
client-go's informers work, so a reconcile reads apps and children from memory and a cluster
where nothing changes costs no GET or LIST at all.

Why not kopf's watches or indexes: kopf filters labels on its side, so it would stream every
Deployment, Service and Job in the cluster to find the operator's; its indexes give no signal
that an initial listing is complete, which a cache must have before anything is decided from a
list (a not-yet-listed cache holds no apps, and every ClusterIssuer would look unused).

Staleness is handled where a write depends on it (reconcile.py): an object the cache does not
hold is made with a create-only apply, which the API server refuses when the name is taken;
deletes carry the resourceVersion or uid they were judged at; server-side apply only ever sets
the operator's own fields. So a lagging cache costs at worst a needless write, never someone
else's update.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from sys import intern
from typing import Any, Callable, Iterator

from kubernetes.client.exceptions import ApiException

from .kube import (
    CERTIFICATE, CLUSTER_ISSUER, FASTAPIAPP, GATEWAY, HOST_CLAIM, INGRESS_CLASS, LIST_PAGE_SIZE, WATCHED_CHILD_KINDS,
    Kind, Kube, is_missing_resource_type, kind_of,
)
from .managed_fields import object_entries
from .meta import LABEL_MANAGED_BY, OPERATOR_NAME
from .metrics import WATCH_RESTARTS
from .settings import Settings

log = logging.getLogger("fastapi_operator.cache")

# The API server ends each watch after this long (plus jitter, so informers do not reconnect in step).
WATCH_SECONDS = 240
# Without a byte for this long the connection is taken for dead: bookmarks arrive about every minute.
READ_TIMEOUT_SECONDS = WATCH_SECONDS + 60
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 2.0
# A kind whose API the cluster does not serve (cert-manager or Traefik not installed yet) is
# asked again at most this often, and only when a reconcile or a resync needs it.
MISSING_API_RECHECK_SECONDS = 10.0

ObjectKey = tuple[str | None, str]  # (namespace or None, name)
# What each object says alone: interned, these would only add an entry to the table of interned
# strings. managedFields are not among them: the children of one operator carry the same few
# tries, managers and times, so thousands of apps share one copy of each (tens of MiB at 10,000).
NOT_INTERNED_METADATA = frozenset({"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"})
# Called on the informer's thread for every change after the first listing: ADDED, MODIFIED, DELETED.
ChangeCallback = Callable[[Kind, str, dict[str, Any]], None]


def _key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return metadata.get("namespace"), metadata["name"]


def _newer(candidate: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """resourceVersions are opaque, but etcd's are integers; compare them when they are."""
    if held is None:
        return True
    new, old = candidate["metadata"].get("resourceVersion", ""), held["metadata"].get("resourceVersion", "")
    if new.isdigit() and old.isdigit():
        return int(new) >= int(old)
    return True


def is_news(event_type: str, obj: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """Does a watch event say something the cache did not hold? Not for the version of an object
    that the operator's own write put there (Cache.observe, before the watch saw it)."""
    return (event_type == "DELETED" or held is None
            or held["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"))


def matches(obj: dict[str, Any], selector: str | None) -> bool:
    """Equality-based label selectors (`a=b,c=d`), the only kind the operator uses."""
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, _, value in (term.partition("=") for term in selector.split(",")))


def changes_between(previous: dict[ObjectKey, dict[str, Any]],
                    listed: dict[ObjectKey, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The watch events that would have led from one listing to the other."""
    for key, obj in listed.items():
        old = previous.get(key)
        if old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            yield ("MODIFIED" if old else "ADDED"), obj
    for key, obj in previous.items():
        if key not in listed:
            yield "DELETED", obj


def kept_version(compact: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]],
                 obj: dict[str, Any], held: dict[str, Any] | None) -> dict[str, Any]:
    """What is kept of a listed or watched version of an object: the held one if it is that very
    version (the answer to the operator's own write, kept as it came back: a child's apply, a
    status; or, in a relisting, what the watch had delivered), else a compacted copy. About half
    the watch events of a new app are such echoes. A deleted object is not kept: its event is
    passed on as it came, uncompacted."""
    if held is not None and held["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
        return held
    return compact(obj, held)


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass(frozen=True)
class Source:
    """One stream: a kind, optionally in one namespace, optionally label-selected."""

    kind: Kind
    namespace: str | None = None
    label_selector: str | None = None


class OwnWrites:
    """The objects the operator is writing now, and the watch events of them that arrived
    meanwhile. An event can reach the watch before the write's answer reaches the operator: held
    until the write has ended, it is passed on only if the write did not make that version (a
    hand edit in between, a failed write). Called under the informer's lock."""

    def __init__(self) -> None:
        self.held: dict[ObjectKey, list[tuple[str, dict[str, Any]]]] = {}
        self.made: dict[ObjectKey, str] = {}  # the version each write in flight made

    def begin(self, key: ObjectKey) -> None:
        self.held.setdefault(key, [])

    def hold(self, key: ObjectKey, event_type: str, obj: dict[str, Any]) -> bool:
        if key not in self.held:
            return False
        self.held[key].append((event_type, obj))
        return True

    def written(self, key: ObjectKey, version: str | None) -> None:
        if key in self.held and version:
            self.made[key] = version

    def deleted_after(self, key: ObjectKey, answer: dict[str, Any]) -> bool:
        """Was the object deleted after the version a write's `answer` holds? Then the answer,
        arriving late, must not bring it back into the cache: nothing would ever take it out."""
        return any(kind == "DELETED" and _newer(obj, answer) for kind, obj in self.held.get(key, []))

    def end(self, key: ObjectKey, drop_own: bool) -> list[tuple[str, dict[str, Any]]]:
        """The events to pass on now: every one held, or with `drop_own` the last one held if any
        held event was not of the version the write made."""
        events, made = self.held.pop(key, []), self.made.pop(key, None)
        if not drop_own:
            return events
        if any(kind == "DELETED" or obj["metadata"].get("resourceVersion") != made for kind, obj in events):
            return events[-1:]
        return []


class Informer:
    def __init__(self, kube: Kube, source: Source, on_change: ChangeCallback,
                 compact: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]],
                 news_only: bool = False, page_size: int = LIST_PAGE_SIZE) -> None:
        """`compact(obj, held)` makes what is kept of each object, sharing what it can with the
        version held (read without the lock: any earlier version will do): the less memory, the
        better. With `news_only`, an event for a version the cache already holds is not passed on
        (is_news). The listing is read `page_size` objects at a time."""
        self.kube = kube
        self.source = source
        self.on_change = on_change
        self.compact = compact
        self.news_only = news_only
        self.page_size = page_size
        self.own_writes = OwnWrites()
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()  # listed once (or the API is known to be missing)
        self.missing_api = False
        self._recheck = threading.Event()
        self._last_check = 0.0
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"watch-{source.kind.plural}-{source.namespace or 'all'}")

    def describe(self) -> str:
        return f"watch of {self.source.kind.plural} in {self.source.namespace or 'all namespaces'}"

    # Reads, from any thread.
    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get((namespace, name))

    def list(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            objects = list(self.objects.values())
        return [obj for obj in objects
                if (namespace is None or obj["metadata"].get("namespace") == namespace) and matches(obj, label_selector)]

    def observe(self, obj: dict[str, Any]) -> None:
        """A write's answer, so the next reconcile does not wait for the watch to see it."""
        if not matches(obj, self.source.label_selector):
            return
        kept = self.compact(obj, self.objects.get(_key(obj)))
        with self.lock:
            if _newer(kept, self.objects.get(_key(kept))) and not self.own_writes.deleted_after(_key(kept), kept):
                self.objects[_key(kept)] = kept
            self.own_writes.written(_key(kept), kept["metadata"].get("resourceVersion"))

    def writing(self, key: ObjectKey) -> None:
        with self.lock:
            self.own_writes.begin(key)

    def written(self, key: ObjectKey) -> None:
        """The operator's write of `key` has ended: the events held meanwhile are passed on (with
        `news_only`, only one it did not make), after the writer recorded what it wrote."""
        with self.lock:
            events = self.own_writes.end(key, drop_own=self.news_only)
        for event in events:
            self.on_change(self.source.kind, *event)

    def recheck_missing_api(self) -> None:
        if self.missing_api and time.monotonic() - self._last_check >= MISSING_API_RECHECK_SECONDS:
            self._recheck.set()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._recheck.set()

    # The stream, on the informer's own thread.
    def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        resource_version: str | None = None
        while not self._stopped.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                    if resource_version is None:  # no such API: wait until someone needs it
                        self._recheck.wait()
                        self._recheck.clear()
                        continue
                resource_version = self._watch(resource_version)
                delay = RECONNECT_FIRST_SECONDS
            except _Gone:
                resource_version = None
            except ApiException as error:  # refused (RBAC?) or gone (a CRD deleted): loud, and listed again
                resource_version = None
                log.warning(f"{self.describe()}: the API server answered {error.status} {error.reason}; "
                            f"again in {delay:.1f} s")
                self._stopped.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            except Exception as error:  # the API server is away: try again soon
                if not self._stopped.is_set():
                    log.debug(f"{self.describe()} interrupted ({error!r}); again in {delay:.1f} s")
                self._stopped.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _list(self) -> str | None:
        kind, namespace = self.source.kind, self.source.namespace
        self._last_check = time.monotonic()
        listed: dict[ObjectKey, dict[str, Any]] = {}
        try:
            # Page by page, each kept compact before the next is read (kube.LIST_PAGE_SIZE).
            for page in self.kube.list_pages(kind, namespace, self.source.label_selector, self.page_size):
                for obj in page.get("items", []):
                    listed[_key(obj)] = kept_version(self.compact, {**obj, "apiVersion": kind.api_version,
                                                                    "kind": kind.kind}, self.objects.get(_key(obj)))
                resource_version = page["metadata"]["resourceVersion"]
        except ApiException as error:
            if error.status == 404 and is_missing_resource_type(error):
                self.missing_api = True
                self.synced.set()
                return None
            if error.status == 410:  # the snapshot compacted away between two pages
                raise _Gone() from None
            raise
        with self.lock:
            previous, self.objects = self.objects, listed
        was_synced, was_missing = self.synced.is_set(), self.missing_api
        self.missing_api = False
        if was_missing:
            # A kind whose API just appeared: everything in it is news.
            for obj in listed.values():
                self.on_change(kind, "ADDED", obj)
        elif was_synced:
            WATCH_RESTARTS.labels(kind.plural).inc()
            log.info(f"{kind.plural} listed again: the watch fell too far behind")
            # What changed while the watch was away reaches the handlers as if it had been watched.
            for event_type, obj in changes_between(previous, listed):
                self.on_change(kind, event_type, obj)
        self.synced.set()
        return resource_version

    def _watch(self, resource_version: str) -> str:
        for event in self.kube.watch(self.source.kind, self.source.namespace, self.source.label_selector,
                                     resource_version, WATCH_SECONDS + random.randint(0, 30), READ_TIMEOUT_SECONDS):
            if self._stopped.is_set():
                break
            kind, event_type, obj = self.source.kind, event["type"], event["object"]
            if event_type == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone()
                raise RuntimeError(f"watch error: {obj.get('message')}")
            resource_version = obj["metadata"]["resourceVersion"]
            if event_type == "BOOKMARK":
                continue
            obj = obj if event_type == "DELETED" else kept_version(self.compact, obj, self.objects.get(_key(obj)))
            with self.lock:
                held = self.objects.get(_key(obj))
                if event_type == "DELETED":
                    self.objects.pop(_key(obj), None)
                elif _newer(obj, held):
                    self.objects[_key(obj)] = obj
                waits = self.own_writes.hold(_key(obj), event_type, obj)
            if not waits and (not self.news_only or is_news(event_type, obj, held)):
                self.on_change(kind, event_type, obj)
        return resource_version


def interned(value: Any) -> Any:
    """`value` with every string in it interned (in place). A string is interned where it is met,
    not in a call of its own: most of what is walked is strings, and a call per string was most of
    the walk's CPU."""
    kind = type(value)
    if kind is str:
        return intern(value)
    if kind is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                value[key] = intern(item)
            elif kind is dict or kind is list:
                interned(item)
    elif kind is list:
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str:
                value[index] = intern(item)
            elif kind is dict or kind is list:
                interned(item)
    return value


METADATA = frozenset({"metadata"})


def shared(kept: dict[str, Any], held: dict[str, Any] | None) -> dict[str, Any]:
    """`kept` (a compacted copy) holding one copy of what thousands of one operator's objects
    say alike: an image, a probe's path, a condition's reason, the labels' values, the app's name
    in each of its children, who set which fields and when (managedFields; orjson already shares
    the field names). A part equal to the held version's is that version's, shared already, so a
    controller's progress report costs a comparison, not a walk; a new or changed part has its
    strings interned. The one place the cache interns."""
    previous = held or {}

    def share(into: dict[str, Any], before: dict[str, Any], skip: frozenset[str]) -> None:
        for key, value in into.items():
            if key in skip:
                continue
            old = before.get(key)
            into[key] = old if old is not None and old == value else interned(value)

    share(kept, previous, METADATA)
    metadata = kept["metadata"] = dict(kept.get("metadata") or {})
    share(metadata, previous.get("metadata") or {}, NOT_INTERNED_METADATA)
    return kept


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """For kinds the operator never compares field by field: managedFields are most of their bytes."""
    metadata = obj.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    metadata = {k: v for k, v in metadata.items() if k not in ("managedFields", "annotations")}
    if annotations:
        metadata["annotations"] = annotations
    return {**obj, "metadata": metadata}


def without_subresource_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """For children: who set which field of the object itself is compared (managed_fields.py),
    who set its status (the controllers' share of managedFields) never is. The field tries are
    kept as JSON text: as dicts they were a third of the memory of 1,000 apps' children."""
    metadata = obj.get("metadata") or {}
    entries = metadata.get("managedFields")
    if entries:
        metadata = {**metadata, "managedFields": object_entries(entries)}
    return {**obj, "metadata": metadata}


def kept_child(obj: dict[str, Any], held: dict[str, Any] | None) -> dict[str, Any]:
    return shared(without_subresource_fields(obj), held)


def kept_whole(obj: dict[str, Any], held: dict[str, Any] | None) -> dict[str, Any]:
    return shared(without_managed_fields(obj), held)


class Cache:
    """Every informer the operator runs, and reads by kind."""

    def __init__(self, kube: Kube, sources: list[tuple[Source, bool]], on_change: ChangeCallback,
                 news_only: frozenset[Kind] = frozenset()) -> None:
        """`sources`: each stream, and whether its objects' managedFields are kept (children
        are compared field by field with what other managers set; the rest never are).
        `news_only`: kinds whose events for a version the cache holds are not passed on: a
        child's event for the version its app's own write made asks for no reconcile of it."""
        self.informers: dict[Kind, list[Informer]] = {}
        for source, keep_managed_fields in sources:
            compact = kept_child if keep_managed_fields else kept_whole
            informer = Informer(kube, source, on_change, compact, source.kind in news_only)
            self.informers.setdefault(source.kind, []).append(informer)
        # Kinds whose every informer watches all namespaces: a read in one namespace asks them all.
        self.cluster_wide = frozenset(kind for kind, informers in self.informers.items()
                                      if all(informer.source.namespace is None for informer in informers))

    def start(self) -> None:
        for informer in self._all():
            informer.start()

    def stop(self) -> None:
        for informer in self._all():
            informer.stop()

    def wait_synced(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in self._all():
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not informer.synced.wait(left):
                return False
        return True

    def unsynced(self) -> list[str]:
        return [informer.describe() for informer in self._all() if not informer.synced.is_set()]

    def watches(self, kind: Kind) -> bool:
        return kind in self.informers

    def sizes(self) -> dict[str, int]:
        """Objects held, by kind (the plural), for the metrics."""
        return {kind.plural: sum(len(informer.objects) for informer in informers)
                for kind, informers in self.informers.items()}

    def _all(self) -> Iterator[Informer]:
        for informers in self.informers.values():
            yield from informers

    def _for(self, kind: Kind, namespace: str | None) -> list[Informer]:
        informers = self.informers.get(kind, [])
        if namespace is None or kind in self.cluster_wide or not kind.namespaced:
            return informers
        return [i for i in informers if i.source.namespace in (None, namespace)]

    def api_missing(self, kind: Kind) -> bool:
        """The cluster did not serve this kind when it was last asked."""
        informers = self.informers.get(kind, [])
        return bool(informers) and all(informer.missing_api for informer in informers)

    def recheck(self, kind: Kind) -> None:
        """If the cluster did not serve this kind when last asked, ask again (at most every few seconds)."""
        for informer in self.informers.get(kind, []):
            informer.recheck_missing_api()

    def recheck_missing_apis(self) -> None:
        for informer in self._all():
            informer.recheck_missing_api()

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        for informer in self._for(kind, namespace):
            obj = informer.get(namespace if kind.namespaced else None, name)
            if obj is not None:
                return obj
        return None

    def list(self, kind: Kind, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [obj for informer in self._for(kind, namespace) for obj in informer.list(namespace, label_selector)]

    @contextmanager
    def writing(self, kind: Kind, namespace: str | None, name: str) -> Iterator[None]:
        """Around the operator's write of one object: the watch's events of it wait until the
        write has ended, so the one the write makes is known as its own (OwnWrites)."""
        informers, key = self._for(kind, namespace), (namespace if kind.namespaced else None, name)
        for informer in informers:
            informer.writing(key)
        try:
            yield
        finally:
            for informer in informers:
                informer.written(key)

    def observe(self, obj: dict[str, Any] | None) -> None:
        if not obj or "metadata" not in obj:
            return
        try:
            kind = kind_of(obj)
        except KeyError:
            return
        for informer in self._for(kind, obj["metadata"].get("namespace")):
            informer.observe(obj)


def watched_sources(settings: Settings) -> list[tuple[Source, bool]]:
    """Every stream the operator reads from, and whether it keeps managedFields (needed where the
    operator compares an object field by field with what it applied)."""
    children = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"
    sources: list[tuple[Source, bool]] = []
    for namespace in settings.namespaces or [None]:
        sources.append((Source(FASTAPIAPP, namespace), False))
        sources += [(Source(kind, namespace, children), True) for kind in WATCHED_CHILD_KINDS]
        # Not label-selected: cert-manager's ingress-shim makes an app's Certificate, unlabelled.
        sources.append((Source(CERTIFICATE, namespace), True))
    # Cluster-wide: the platform's Gateways and classes, ClusterIssuers (an app may name any) and
    # HostClaims (an admin's carry no label).
    sources += [(Source(kind), kind is CLUSTER_ISSUER) for kind in (INGRESS_CLASS, GATEWAY, CLUSTER_ISSUER, HOST_CLAIM)]
    return sources
