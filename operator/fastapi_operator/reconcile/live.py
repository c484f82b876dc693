"""What a reconcile reads of an app's children, and what it refuses before writing anything."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp
from ..errors import InvalidSpec
from ..kinds import CLUSTER_ISSUER, possible_children
from ..render import Rendered
from .children import describe, is_controlled_by, taken
from .reads import Reads
from .rollout import Key, key_of
from .shared import is_operator_issuer


def read_children(reads: Reads, app: FastAPIApp, rendered: Rendered, contested: bool) -> dict[Key, dict[str, Any] | None]:
    """Every possible child, from the cache. The cache holds only the operator's own
    children, so a name someone else took is found out by the create-only apply that makes
    a missing child. An app `contested` (in Conflict at its last reconcile) asks the API
    server about every child the cache lacks before writing, so its retries never make and
    undo the children that come before the taken one."""
    desired_keys = {key_of(m) for m in rendered.manifests}

    def look(key: Key) -> dict[str, Any] | None:
        desired = key in desired_keys
        # A kind the cache found missing may have been installed since: the API server says.
        installed_since = desired and reads.api_missing(key[0])
        return reads.get(key[0], app.namespace, key[1], required_api=desired, confirm_absence=installed_since)

    live = {key: look(key) for key in possible_children(app.namespace, app.name)}
    if contested:
        for key in desired_keys:
            if live.get(key) is None and key[0] is not CLUSTER_ISSUER:
                live[key] = reads.get(key[0], app.namespace, key[1], required_api=True, confirm_absence=True)
    for kind, child_name in desired_keys:
        if kind is CLUSTER_ISSUER:
            live[(kind, child_name)] = reads.get(kind, None, child_name)
    return live


def refuse_early(reads: Reads, app: FastAPIApp, rendered: Rendered, live: dict[Key, dict[str, Any] | None]) -> None:
    """What can be refused before anything is written: a named ClusterIssuer that does not
    exist, children someone else holds."""
    referenced = rendered.plan.referenced_issuer
    if referenced and reads.get(CLUSTER_ISSUER, None, referenced, required_api=True) is None:
        raise InvalidSpec(f"spec.tls.clusterIssuer: ClusterIssuer {referenced!r} does not exist: create it, "
                          f"or use spec.tls.acme to let the operator manage one")
    desired_keys = {key_of(m) for m in rendered.manifests}
    uid = app.metadata.uid or ""
    conflicts = [
        describe(kind, child_name, app.namespace) for (kind, child_name), obj in live.items()
        if obj is not None and (kind, child_name) in desired_keys
        and not (is_operator_issuer(obj) if kind is CLUSTER_ISSUER else is_controlled_by(obj, uid))
    ]
    if conflicts:
        raise taken(conflicts)
