"""Writing an app's namespaced children: make, update, revert hand edits, delete, and undo what a
reconcile made when a later write finds the set cannot be completed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException

from ..errors import Conflict, InvalidSpec, ReconcileError
from ..guarded import is_guarded
from ..kube import CRON_JOB, DEPLOYMENT, JOB, Kind, api_message, is_replaced, is_unbuildable_apply, kind_of
from .migrations import step_names
from ..managed_fields import applied_by, foreign_fields, removal_patch
from ..meta import AUTOSCALER_HANDOFF_FIELD_MANAGER, FIELD_MANAGER, MIGRATION_GATE_FIELD_MANAGER
from .reads import Reads


def is_controlled_by(obj: dict[str, Any], app_uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == app_uid
        for ref in obj.get("metadata", {}).get("ownerReferences", [])
    )


def uid_of(obj: dict[str, Any] | None) -> str | None:
    return obj["metadata"].get("uid") if obj else None


def describe(kind: Kind, name: str, namespace: str | None) -> str:
    return f"{kind.kind} {namespace}/{name}" if namespace and kind.namespaced else f"{kind.kind} {name}"


def taken(described: list[str]) -> Conflict:
    one = len(described) == 1
    return Conflict(
        f"{', '.join(described)} already exist{'s' if one else ''} and {'is' if one else 'are'} not owned by "
        f"this FastAPIApp: delete or rename {'it' if one else 'them'}, or give the FastAPIApp another name"
    )


def refused_as_invalid(manifest: dict[str, Any], write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What the schema could not catch (an env var the core API rejects, ...) is the spec's fault."""
    try:
        return write()
    except ApiException as error:
        if is_replaced(error):
            raise ReconcileError(f"{manifest['kind']} {manifest['metadata']['name']} was deleted and made "
                                 f"again while the operator read it; looking again") from None
        if error.status not in (400, 422) and not is_unbuildable_apply(error):
            raise
        raise InvalidSpec(f"the API server rejects the {manifest['kind']} this spec makes: {api_message(error)}") from None


@dataclass(frozen=True)
class Made:
    """A child a reconcile created, and the change it reported: undone if a later write fails."""

    kind: Kind
    name: str
    uid: str
    change: str


@dataclass
class ChildWriter:
    """The writes of one reconcile of one app; `changes` become its Events."""

    reads: Reads
    namespace: str
    app_uid: str
    changes: list[str] = field(default_factory=list)
    made: list[Made] = field(default_factory=list)

    @property
    def kube(self):  # type: ignore[no-untyped-def]
        return self.reads.kube

    def write(self, manifest: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
        kind, name = kind_of(manifest), manifest["metadata"]["name"]
        if live is None:
            return self.make(manifest)
        if kind is DEPLOYMENT:
            self._hand_replicas_to_autoscaler(manifest, live)
        with self.reads.writing(kind, self.namespace, name):
            result = self.reads.written(
                self.refusing_undoes(manifest, lambda: self.kube.apply(manifest, uid=uid_of(live))), sent=manifest)
        self.changes.append(f"Updated {describe(kind, name, self.namespace)}")
        return result

    def make(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Make a child the cache does not hold, create-only: a name taken by an object the
        operator has not seen (someone else's, or its own that the watch has not delivered yet)
        is refused by the API server, then read. Someone else's is a Conflict, and the children
        this reconcile made before it are deleted again, so no half-made set stays behind."""
        kind, name = kind_of(manifest), manifest["metadata"]["name"]
        with self.reads.writing(kind, self.namespace, name):
            return self._make(manifest, kind, name)

    def _make(self, manifest: dict[str, Any], kind: Kind, name: str) -> dict[str, Any]:
        described = describe(kind, name, self.namespace)
        try:
            child = self.refusing_undoes(manifest, lambda: self.kube.apply(manifest, create_only=True))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(kind, self.namespace, name)
            if existing is None:
                raise ReconcileError(f"{described} was deleted while the operator made it; looking again") from None
            if not is_controlled_by(existing, self.app_uid):
                self.undo()
                raise taken([described]) from None
            child = refused_as_invalid(manifest, lambda: self.kube.apply(manifest, uid=uid_of(existing)))
            change = f"Updated {described}"
        else:
            change = f"Created {described}"
            self.made.append(Made(kind, name, uid_of(child) or "", change))
        self.changes.append(change)
        return self.reads.written(child, sent=manifest)

    def refusing_undoes(self, manifest: dict[str, Any], write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A write the API server refuses as invalid undoes what this reconcile made before it."""
        try:
            return refused_as_invalid(manifest, write)
        except InvalidSpec:
            self.undo()
            raise

    def undo(self) -> None:
        for earlier in reversed(self.made):
            self.kube.delete(earlier.kind, self.namespace, earlier.name, uid=earlier.uid)
            self.changes.remove(earlier.change)
        self.made.clear()

    def delete(self, kind: Kind, name: str, live: dict[str, Any], why: str = "") -> None:
        self.reads.rewrites.forget(kind, self.namespace, name)
        if self.kube.delete(kind, self.namespace, name, uid=uid_of(live)):
            self.changes.append(f"Deleted {describe(kind, name, self.namespace)}{why}")

    def _hand_replicas_to_autoscaler(self, desired: dict[str, Any], live: dict[str, Any]) -> None:
        """Before the operator stops setting spec.replicas, a second manager sets the same value,
        so the field outlives the operator's apply instead of being reset to 1 until the
        autoscaler acts (11 s of a single pod, measured before this existed)."""
        if "replicas" in desired["spec"]:
            return
        if "f:replicas" not in applied_by(live, FIELD_MANAGER).get("f:spec", {}):
            return
        metadata = live["metadata"]
        self.kube.apply({
            "apiVersion": desired["apiVersion"], "kind": desired["kind"],
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "spec": {"replicas": live["spec"].get("replicas", 1)},
        }, field_manager=AUTOSCALER_HANDOFF_FIELD_MANAGER)

    def revert_hand_edits(self, desired: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
        """Remove what other managers added to the parts of the child that are the operator's
        alone (guarded.py). The patch only applies to the version that was read."""
        kind = kind_of(desired)
        for attempt in range(2):
            found = foreign_fields(desired, child, FIELD_MANAGER, lambda path: is_guarded(kind.kind, path))
            if not found:
                return child
            metadata = child["metadata"]
            try:
                result = self.reads.written(self.kube.json_patch(
                    kind, metadata.get("namespace"), metadata["name"], removal_patch(found, metadata["resourceVersion"])))
            except ApiException as error:
                # Changed since it was read (the test op failed): read it again, once.
                if error.status not in (409, 422) or attempt:
                    raise
                child = self.kube.get(kind, metadata.get("namespace"), metadata["name"]) or child
                continue
            managers = sorted({m for f in found for m in f.managers})
            self.changes.append(
                f"Reverted {describe(kind, metadata['name'], metadata.get('namespace'))}: removed "
                f"{', '.join(f.dotted for f in found)} (set by {', '.join(managers)}; these fields are the "
                f"operator's, change the FastAPIApp instead)")
            return result
        return child

    def set_suspended(self, cron_job: dict[str, Any], suspend: bool) -> dict[str, Any]:
        """The migration gate's one field, under its own manager (meta.MIGRATION_GATE_FIELD_MANAGER)."""
        metadata = cron_job["metadata"]
        result = self.reads.written(self.kube.apply({
            "apiVersion": cron_job["apiVersion"], "kind": cron_job["kind"],
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "spec": {"suspend": suspend},
        }, uid=uid_of(cron_job), field_manager=MIGRATION_GATE_FIELD_MANAGER))
        described = describe(CRON_JOB, metadata["name"], self.namespace)
        self.changes.append(f"Suspended {described}: no run starts while a migration runs" if suspend else
                            f"Resumed {described}: the migration ended")
        return result

    def create_job(self, job: dict[str, Any]) -> None:
        """Create, never apply: a Job of that name that is not this app's is a conflict, not ours to take."""
        name = job["metadata"]["name"]
        try:
            self.reads.written(self.kube.create(job))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(JOB, self.namespace, name)
            if existing is None or not is_controlled_by(existing, self.app_uid):
                raise Conflict(f"Job {self.namespace}/{name} already exists and is not owned by this FastAPIApp: "
                               f"delete or rename it") from None
            return
        self.changes.append(f"Created {describe(JOB, name, self.namespace)}: runs preStart "
                              f"{', '.join(step_names(job))} once, before the new version's pods start")

    def check(self, manifest: dict[str, Any], live: dict[str, Any] | None) -> None:
        """A dry run of the write: what would refuse it (a name someone else holds, the API
        server's validation) refuses it now, before a migration Job starts for it."""
        kind, name = kind_of(manifest), manifest["metadata"]["name"]
        if live is not None:
            self.refusing_undoes(manifest, lambda: self.kube.apply(manifest, uid=uid_of(live), dry_run=True))
            return
        try:
            self.refusing_undoes(manifest, lambda: self.kube.apply(manifest, create_only=True, dry_run=True))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self.kube.get(kind, self.namespace, name)
            if existing is not None and not is_controlled_by(existing, self.app_uid):
                self.undo()
                raise taken([describe(kind, name, self.namespace)]) from None
