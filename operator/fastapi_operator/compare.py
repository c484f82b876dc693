"""Compare before write: does the live object already say everything the desired one says?

Only the fields the operator sets are compared, so what the API server defaults (imagePullPolicy,
timeoutSeconds, ...) or other controllers add never causes a write. This is what lets a
reconcile with nothing to do send no mutating request at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity


def _as_quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def _scalars_equal(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    # The API server canonicalises quantities ("0.5" -> "500m", 1 -> "1").
    desired_quantity, live_quantity = _as_quantity(desired), _as_quantity(live)
    return desired_quantity is not None and desired_quantity == live_quantity


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def is_subset(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return _is_empty(desired) and _is_empty(live)
        return all(
            is_subset(value, live.get(key)) if key in live else _is_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return _is_empty(desired) and _is_empty(live)
        return len(desired) == len(live) and all(is_subset(d, l) for d, l in zip(desired, live))
    return _scalars_equal(desired, live)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    metadata = desired.get("metadata", {})
    live_metadata = live.get("metadata", {})
    for key in ("labels", "annotations", "ownerReferences"):
        if key in metadata and not is_subset(metadata[key], live_metadata.get(key)):
            return True
    return not all(
        is_subset(value, live.get(key)) for key, value in desired.items()
        if key not in ("apiVersion", "kind", "metadata")
    )
