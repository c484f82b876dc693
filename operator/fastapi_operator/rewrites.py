"""What the API server made of what the operator applied, remembered, so a child converges after
one write.

An admission webhook may rewrite a value the operator applies (an image mirror turns
`registry.example/app:1` into `mirror.example/app:1`), and a default may stand where the operator
asked for something the server does not keep. compare.py then finds the child "different" at every
reconcile, and the operator would write it, and roll or queue its pods, forever. So after each
write the operator notes the fields where the answer differs from what it sent (path, what it sent,
what came back), and later reads show each such field as it was sent for as long as it still holds
exactly what came back. A spec change sends a new value: compared as usual, written once, noted
again. A hand edit leaves the field holding something else: compared as usual, repaired. A write
that comes back as sent forgets the child.

Kept in memory, not on the object: an annotation could only say what was sent, not that nobody
changed the field since. After a restart, a rewritten child costs one write (then it is noted).
Lists whose length the server changed (an injected container) are not noted: comparing them
needs the injector's rules, and such a child is written at each reconcile as before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .compare import is_empty, scalars_equal
from .kinds import Kind

Path = tuple[str | int, ...]
# A field the answer lacks: the server dropped what was sent.
ABSENT = object()


@dataclass(frozen=True)
class Rewrite:
    path: Path
    sent: Any
    served: Any  # ABSENT when the answer lacks the field


def _names(path: Path) -> tuple[str, ...]:
    return tuple(part for part in path if isinstance(part, str))


class _Unnoted(Exception):
    """A difference no rewrite can describe (a list of another length)."""


def _walk(sent: Any, served: Any, path: Path, found: list[Rewrite]) -> None:
    if sent == served:
        # Most of an answer is what was sent: a part that is all of it is not walked. Walking every
        # field of a new app's five children was the largest part of its CPU in a profile (yappi).
        return
    if isinstance(sent, dict) and isinstance(served, dict):
        for key, value in sent.items():
            if key in served:
                _walk(value, served[key], path + (key,), found)
            elif not is_empty(value):
                found.append(Rewrite(path + (key,), value, ABSENT))
        return
    if isinstance(sent, list) and isinstance(served, list):
        if len(sent) != len(served):
            raise _Unnoted
        for index, (item, answer) in enumerate(zip(sent, served)):
            _walk(item, answer, path + (index,), found)
        return
    if is_empty(sent) and is_empty(served):
        return
    if isinstance(sent, (dict, list)):
        raise _Unnoted
    if not scalars_equal(sent, served, _names(path)):
        found.append(Rewrite(path, sent, served))


def rewrites_between(sent: dict[str, Any], served: dict[str, Any]) -> tuple[Rewrite, ...] | None:
    """The fields of `sent` the server answered with something else, over what compare.py compares
    (the labels, annotations and owners, and everything outside metadata); None when a difference
    cannot be described field by field."""
    found: list[Rewrite] = []
    try:
        for key in ("labels", "annotations", "ownerReferences"):
            if key in sent.get("metadata", {}):
                _walk(sent["metadata"][key], served.get("metadata", {}).get(key), ("metadata", key), found)
        for key, value in sent.items():
            if key not in ("apiVersion", "kind", "metadata"):
                _walk(value, served.get(key), (key,), found)
    except _Unnoted:
        return None
    return tuple(found)


def _holds(obj: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, list) or part >= len(obj):
                return False, None
        elif not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def as_sent(obj: dict[str, Any], rewrites: tuple[Rewrite, ...]) -> dict[str, Any]:
    """`obj` with each rewritten field that still holds what the server answered shown as sent; a
    copy when anything changes (the cache's objects are never edited)."""
    copied: dict[str, Any] | None = None
    for rewrite in rewrites:
        *above, last = rewrite.path
        present, parent = _holds(obj, tuple(above))
        if not present or not isinstance(parent, (dict, list)):
            continue
        if rewrite.served is ABSENT:
            untouched = isinstance(parent, dict) and last not in parent
        else:
            held, value = _holds(parent, (last,))
            untouched = held and value == rewrite.served
        if not untouched:
            continue
        copied = copied if copied is not None else copy.deepcopy(obj)
        _, target = _holds(copied, tuple(above))
        target[last] = rewrite.sent
    return copied if copied is not None else obj


Key = tuple[Kind, str | None, str]


class ServerRewrites:
    """The rewrites of each child the operator wrote, by (kind, namespace, name)."""

    def __init__(self) -> None:
        self._noted: dict[Key, tuple[Rewrite, ...]] = {}

    def __len__(self) -> int:
        return len(self._noted)

    def note(self, kind: Kind, sent: dict[str, Any], served: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """After a write: remember what the server changed of `sent`; return `served` as later reads
        will show it, and whether it holds every value sent as it was sent."""
        key = (kind, served["metadata"].get("namespace"), served["metadata"]["name"])
        found = rewrites_between(sent, served)
        if not found:
            self._noted.pop(key, None)
            return served, found is not None
        self._noted[key] = found
        return as_sent(served, found), False

    def shown(self, kind: Kind, obj: dict[str, Any] | None) -> dict[str, Any] | None:
        if obj is None or not self._noted:
            return obj
        found = self._noted.get((kind, obj["metadata"].get("namespace"), obj["metadata"]["name"]))
        return as_sent(obj, found) if found else obj

    def forget(self, kind: Kind, namespace: str | None, name: str) -> None:
        self._noted.pop((kind, namespace, name), None)
