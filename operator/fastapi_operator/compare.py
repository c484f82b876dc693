"""Compare before write: does the live child say exactly what the operator would apply now?

Two checks, both needed for an exact answer:
- every value the desired object sets is in the live one. Fields the operator does not set
  (server defaults such as imagePullPolicy, or what other controllers add) are not compared, so
  they never cause a write;
- the fields the operator set at its last apply (its managedFields) are exactly the fields it
  would set now. This is what notices a field the spec dropped: server-side apply removes it.

A reconcile with nothing to do therefore sends no mutating request at all.

Each answer is remembered per live object while the desired object and what the questions read
of the live one stay the same (`remembered`): one reconcile asks whether a Deployment's pod
template changes up to five times, and every resync asks it again of each unchanged child. The
desired object is named by a digest of its JSON, the live one by its resourceVersion, or when
that moved, by a digest of all that the questions read of it (`content_digest`: not its status,
nor what other managers set in its metadata), so a remembered answer is the answer. The answer
to the operator's own apply is known without asking (`applied_as_sent`).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Callable, NamedTuple

import orjson
from kubernetes.utils import parse_quantity

from .managed_fields import applied_by, is_applied_by, object_entries, sets_same_fields
from .meta import FIELD_MANAGER

# The API server canonicalises resource quantities ("0.5" -> "500m", 1 -> "1"); everywhere else
# a string is a string ("1.10" is not "1.1").
QUANTITY_MAPS = {"limits", "requests"}
QUANTITY_FIELDS = {"divisor"}


def _as_quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def _is_quantity_path(path: tuple[str, ...]) -> bool:
    if path and path[-1] in QUANTITY_FIELDS:
        return True
    return len(path) >= 3 and path[-2] in QUANTITY_MAPS and path[-3] == "resources"


def scalars_equal(desired: Any, live: Any, path: tuple[str, ...]) -> bool:
    if desired == live:
        return True
    if not _is_quantity_path(path):
        return False
    desired_quantity, live_quantity = _as_quantity(desired), _as_quantity(live)
    return desired_quantity is not None and desired_quantity == live_quantity


def is_empty(value: Any) -> bool:
    """What the API server stores as nothing: optional fields are `omitempty`, so an empty string,
    list or map the operator applies (a user's `env: [{name: X, value: ""}]`, an empty toleration
    key or envFrom prefix) is absent from the live object, and absent must match it."""
    return value is None or value == "" or value == [] or value == {}


def is_subset(desired: Any, live: Any, path: tuple[str, ...] = ()) -> bool:
    """Does `live` say everything `desired` says? `path` (field names, no list indices) tells
    where quantity semantics apply."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return is_empty(desired) and is_empty(live)
        return all(
            is_subset(value, live.get(key), path + (key,)) if key in live else is_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return is_empty(desired) and is_empty(live)
        return len(desired) == len(live) and all(is_subset(d, l, path) for d, l in zip(desired, live))
    return scalars_equal(desired, live, path)


def values_match(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    metadata = desired.get("metadata", {})
    live_metadata = live.get("metadata", {})
    for key in ("labels", "annotations", "ownerReferences"):
        if key in metadata and not is_subset(metadata[key], live_metadata.get(key), ("metadata", key)):
            return False
    return all(
        is_subset(value, live.get(key), (key,)) for key, value in desired.items()
        if key not in ("apiVersion", "kind", "metadata")
    )


Answer = Callable[[dict[str, Any], dict[str, Any]], bool]


class Remembered(NamedTuple):
    version: str  # the live object's resourceVersion when last asked
    content: bytes  # digest of what the questions read of it (content_digest)
    desired: bytes  # digest of the desired object's JSON
    answer: bool


# (question, live uid) -> what was last answered of it: one entry per child the operator has
# compared, replaced when either side changes.
ANSWERS: dict[tuple[str, str], Remembered] = {}
ANSWERS_LIMIT = 200_000  # children; past it (deleted ones add up) everything is forgotten at once


# hashlib lets go of the GIL to hash 2,048 bytes or more at once, and a reconcile thread that
# let go waits to take it back behind the others, up to the 5 ms switch interval, for a hash of
# 3 µs: at 10,000 apps half the reconcile threads' time was that wait (py-spy). A Deployment's
# JSON is about 2.5 KB, so it is hashed in pieces below that size.
HASH_PIECE_BYTES = 2047


def _digest(obj: Any) -> bytes:
    data = memoryview(orjson.dumps(obj))
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(data), HASH_PIECE_BYTES):
        digest.update(data[start:start + HASH_PIECE_BYTES])
    return digest.digest()


def _entries_read(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The managedFields entries a question reads (applied_by: the operator's applies to the
    object itself), as the cache keeps them, so a cached and an answered version agree."""
    return object_entries([entry for entry in entries if is_applied_by(entry, FIELD_MANAGER)])


def content_digest(live: dict[str, Any], desired: dict[str, Any]) -> bytes:
    """What the questions read of a live object, for one desired object: all of it outside its
    metadata and status; of its metadata, its owners, the labels and annotations the desired
    object sets, and the operator's own managedFields entries. A controller's progress reports (a
    Deployment's pods coming up, its revision annotation, a disruption budget's healthy count)
    change none of it, so they leave every answer standing."""
    metadata, wanted = live.get("metadata") or {}, desired.get("metadata") or {}
    read = [metadata.get("ownerReferences"), _entries_read(metadata.get("managedFields") or [])]
    for key in ("labels", "annotations"):
        keys, values = wanted.get(key) or {}, metadata.get(key) or {}
        read.append({name: values[name] for name in keys if name in values})
    return _digest([read, {key: value for key, value in live.items() if key not in ("metadata", "status")}])


def _remember(key: tuple[str, str], remembered: Remembered) -> None:
    if len(ANSWERS) >= ANSWERS_LIMIT:
        ANSWERS.clear()
    ANSWERS[key] = remembered


def remembered(question: Answer) -> Answer:
    def answer(desired: dict[str, Any], live: dict[str, Any]) -> bool:
        metadata = live.get("metadata") or {}
        uid, version = metadata.get("uid"), metadata.get("resourceVersion")
        if not uid or not version:
            return question(desired, live)
        key, digest = (question.__name__, uid), _digest(desired)
        known, content = ANSWERS.get(key), None
        if known is not None and known.desired == digest:
            if known.version == version:
                return known.answer
            content = content_digest(live, desired)
            if known.content == content:
                ANSWERS[key] = known._replace(version=version)
                return known.answer
        result = question(desired, live)
        _remember(key, Remembered(version, content or content_digest(live, desired), digest, result))
        return result
    return answer


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    return True if live is None else _needs_apply(desired, live)


@remembered
def _needs_apply(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    owned = applied_by(live, FIELD_MANAGER)
    # Nothing applied by the operator yet (made by an older version, or adopted): apply once.
    return not owned or not values_match(desired, live) or not sets_same_fields(desired, owned)


# Where each kind that runs the app's pods keeps their template.
POD_TEMPLATE_PATHS = {"Deployment": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template")}


def _at(obj: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = (obj or {}).get(key)
    return obj


def changes_pod_template(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Would applying this Deployment (or CronJob) start a new version of its pods? Only the pod
    template counts: a new replica count or a label on the object starts none."""
    return True if live is None else _changes_pod_template(desired, live)


@remembered
def _changes_pod_template(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    path = POD_TEMPLATE_PATHS[desired["kind"]]
    template = _at(desired, path)
    owned = _at(applied_by(live, FIELD_MANAGER), tuple(f"f:{key}" for key in path)) or {}
    nested_desired: dict[str, Any] = template
    nested_owned: dict[str, Any] = owned
    for key in reversed(path):
        nested_desired, nested_owned = {key: nested_desired}, {f"f:{key}": nested_owned}
    return (not owned or not is_subset(template, _at(live, path), path)
            or not sets_same_fields(nested_desired, nested_owned))


def applied_as_sent(desired: dict[str, Any], served: dict[str, Any]) -> None:
    """The API server's answer to a server-side apply of `desired` that holds every value sent
    as it was sent (rewrites.py found none): the values match, and the operator's fields are
    the ones it just applied, which is what server-side apply records. So neither question needs
    asking of that version; a new app's children are then compared once, not twice."""
    metadata = served.get("metadata") or {}
    uid, version = metadata.get("uid"), metadata.get("resourceVersion")
    if not uid or not version:
        return
    remembered = Remembered(version, content_digest(served, desired), _digest(desired), False)
    _remember(("_needs_apply", uid), remembered)
    if desired.get("kind") in POD_TEMPLATE_PATHS:
        _remember(("_changes_pod_template", uid), remembered)
