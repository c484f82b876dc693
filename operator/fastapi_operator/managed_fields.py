"""Who set which field of a child, read from its `metadata.managedFields`. Pure: no API calls.

Server-side apply records, per field manager, the set of fields it set (the `FieldsV1` trie:
`f:<field>` for a struct or map key, `k:{<keys>}` for an element of a list keyed by some of its
fields, `v:<value>` for an element of a set, `.` for the node itself). Two questions need it:

- Did the spec *drop* something the operator set before? Comparing values alone cannot tell,
  because a field the spec no longer renders is simply absent from the desired object. The
  operator's own trie from its last apply lists exactly what it set; when that differs from what
  it would set now, an apply is due, and server-side apply then removes what was dropped.
- Did *someone else* add a field to a part of the child that belongs to the operator (say
  `hostNetwork: true` into the pod template)? Another manager's trie names it, and a field the
  desired object does not have is a hand edit to revert.

The shape of lists (keyed or atomic) is read from the tries themselves, so no schema is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson

Trie = dict[str, Any]
# A path in FieldsV1 form: ("f:spec", "f:template", ..., 'k:{"name":"app"}', "f:image").
Path = tuple[str, ...]

IDENTITY_FIELDS = ("apiVersion", "kind")
IDENTITY_METADATA = ("name", "namespace")


def _merge(into: Trie, other: Trie) -> Trie:
    for key, value in other.items():
        into[key] = _merge(into.get(key, {}), value) if isinstance(value, dict) else value
    return into


def trie_of(entry: dict[str, Any]) -> Trie:
    """An entry's field trie, from the dicts the API server sends or the JSON text the cache
    keeps instead (`object_entries`)."""
    fields = entry.get("fieldsV1") or {}
    return orjson.loads(fields) if isinstance(fields, str) else fields


def _as_text(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its trie as JSON text (the cache shares the text with every child that
    says the same: `cache.shared`)."""
    fields = entry.get("fieldsV1")
    return {**entry, "fieldsV1": orjson.dumps(fields).decode()} if isinstance(fields, dict) else entry


def object_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of who set the object itself, as a child is kept (cache.py) and compared
    (compare.py): who set its status never matters here, and each field trie is JSON text, a
    tenth of the memory of the dicts, parsed only when a compare is not already remembered."""
    return [_as_text(entry) for entry in entries if not entry.get("subresource")]


def fields_of(live: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> Trie:
    """The union of the field tries of the managedFields entries `predicate` selects."""
    merged: Trie = {}
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("fieldsType") == "FieldsV1" and predicate(entry):
            _merge(merged, trie_of(entry))
    return merged


def is_applied_by(entry: dict[str, Any], manager: str) -> bool:
    """Is this managedFields entry `manager`'s server-side apply to the object itself (not to a
    subresource)?"""
    return entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource")


def applied_by(live: dict[str, Any], manager: str) -> Trie:
    """What `manager` set with server-side apply on the object itself."""
    return fields_of(live, lambda entry: is_applied_by(entry, manager))


def _children(node: Trie) -> dict[str, Trie]:
    return {key: value for key, value in node.items() if key != "."}


def _key_of(segment: str) -> dict[str, Any]:
    return json.loads(segment[2:])


def _element_matches(element: Any, segment: str) -> bool:
    if segment.startswith("k:"):
        return isinstance(element, dict) and all(element.get(k) == v for k, v in _key_of(segment).items())
    if segment.startswith("v:"):
        return element == json.loads(segment[2:])
    return False


def _find_element(items: list[Any], segment: str) -> int | None:
    if segment.startswith("i:"):
        index = int(segment[2:])
        return index if index < len(items) else None
    return next((i for i, element in enumerate(items) if _element_matches(element, segment)), None)


def _without_identity(desired: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply does not track the object's identity as fields."""
    body = {k: v for k, v in desired.items() if k not in IDENTITY_FIELDS}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in IDENTITY_METADATA}
    if metadata:
        body["metadata"] = metadata
    else:
        body.pop("metadata", None)
    return body


def _same_fields(desired: Any, owned: Trie) -> bool:
    children = _children(owned)
    if not children:
        # A leaf: a scalar, an atomic list or struct, or an empty map.
        return True
    if isinstance(desired, dict):
        present = {f"f:{key}" for key, value in desired.items() if value is not None}
        if present != set(children):
            return False
        return all(_same_fields(desired[segment[2:]], node) for segment, node in children.items())
    if isinstance(desired, list):
        if len(children) != len(desired):
            return False
        for segment, node in children.items():
            index = _find_element(desired, segment)
            if index is None or not _same_fields(desired[index], node):
                return False
        return True
    return False


def sets_same_fields(desired: dict[str, Any], owned: Trie) -> bool:
    """Would applying `desired` set exactly the fields in `owned`, no more and no fewer?"""
    return _same_fields(_without_identity(desired), owned)


@dataclass(frozen=True)
class ForeignField:
    """A field another manager set that the desired object does not have."""

    path: Path
    pointer: str  # JSON Pointer into the live object, for a JSON Patch `remove`
    managers: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """The path as a person reads it: spec.template.spec.containers[name=app].securityContext."""
        parts: list[str] = []
        for segment in self.path:
            if segment.startswith("f:"):
                parts.append(("." if parts else "") + segment[2:])
            elif segment.startswith("k:"):
                parts.append("[" + ",".join(f"{k}={v}" for k, v in _key_of(segment).items()) + "]")
            else:
                parts.append(f"[{segment[2:]}]")
        return "".join(parts)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _walk_foreign(desired: Any, live: Any, trie: Trie, path: Path, pointer: str,
                  is_guarded: Callable[[Path], bool]) -> Iterator[tuple[Path, str]]:
    for segment, node in _children(trie).items():
        here = path + (segment,)
        if segment.startswith("f:"):
            name = segment[2:]
            if not isinstance(live, dict) or name not in live:
                continue
            live_child, child_pointer = live[name], f"{pointer}/{_escape(name)}"
            in_desired = isinstance(desired, dict) and desired.get(name) is not None
            desired_child = desired.get(name) if in_desired else None
        elif isinstance(live, list):
            index = _find_element(live, segment)
            if index is None:
                continue
            live_child, child_pointer = live[index], f"{pointer}/{index}"
            desired_index = _find_element(desired, segment) if isinstance(desired, list) else None
            in_desired = desired_index is not None
            desired_child = desired[desired_index] if in_desired else None
        else:
            continue
        if not in_desired:
            if is_guarded(here):
                yield here, child_pointer
            elif _children(node):
                # Not ours as a whole, but a guarded field may sit below it.
                yield from _walk_foreign(None, live_child, node, here, child_pointer, is_guarded)
            continue
        if isinstance(desired_child, (dict, list)):
            yield from _walk_foreign(desired_child, live_child, node, here, child_pointer, is_guarded)


def foreign_fields(desired: dict[str, Any], live: dict[str, Any], own_manager: str,
                   is_guarded: Callable[[Path], bool]) -> list[ForeignField]:
    """Fields in guarded parts of `live` that other managers set and `desired` does not have,
    outermost first per branch (a foreign container is one field, not one per key of it).
    Subresource writers (the autoscaler through /scale, controllers through /status) are
    never foreign: they own what they write there."""
    found: dict[str, ForeignField] = {}
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == own_manager or entry.get("subresource") or entry.get("fieldsType") != "FieldsV1":
            continue
        for path, pointer in _walk_foreign(desired, live, trie_of(entry), (), "", is_guarded):
            managers = found[pointer].managers + (entry["manager"],) if pointer in found else (entry["manager"],)
            found[pointer] = ForeignField(path, pointer, managers)
    # An outer removal makes the inner ones moot.
    pointers = sorted(found)
    outermost = [p for p in pointers if not any(p.startswith(o + "/") for o in pointers if o != p)]
    return [found[p] for p in outermost]


def removal_patch(fields: list[ForeignField], resource_version: str) -> list[dict[str, Any]]:
    """A JSON Patch removing `fields`, valid only against `resource_version`: the test op makes
    the API server refuse it if the object changed since it was read."""

    def order(pointer: str) -> list[tuple[int, Any]]:
        return [(0, int(t)) if t.isdigit() else (1, t) for t in pointer.split("/")]

    # Later list elements first, so earlier indices stay valid while removing.
    ops = [{"op": "remove", "path": f.pointer}
           for f in sorted(fields, key=lambda f: order(f.pointer), reverse=True)]
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}, *ops]
