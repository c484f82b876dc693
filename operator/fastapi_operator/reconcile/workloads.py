"""The workers and schedules behind the migration gate. Pure: the rendered workloads, what lives
and the gate in; what to write, hold, suspend and delete out.

- A worker's Deployment or a schedule's CronJob whose pods would change (a new one included)
  waits while the gate holds: no process of the new version starts before its migration
  succeeded, and after a failed one the old version keeps running, as the web pods do.
- While a migration Job of the app runs (or waits for an earlier one), every schedule is
  suspended: a run would meet a database halfway through its migration. It resumes when the Job
  ends; a run missed meanwhile starts then, unless its startingDeadlineSeconds has passed.
- What the spec dropped goes at once: it runs no code of the new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..compare import changes_pod_template, needs_apply
from ..errors import MigrationQueued, MigrationRunning
from ..kinds import CRON_JOB, Kind
from ..managed_fields import applied_by
from ..meta import MIGRATION_GATE_FIELD_MANAGER
from .migrations import Gate
from .rollout import Key, key_of

RUNS_PODS = ("Deployment", "CronJob")


def migration_runs(gate: Gate) -> bool:
    return isinstance(gate.hold, (MigrationRunning, MigrationQueued))


def suspension(cron_job: dict[str, Any], migration_running: bool) -> bool | None:
    """The spec.suspend the gate sets now, or None to leave it: it suspends while a migration runs,
    and resumes only a CronJob it suspended (a user's suspension stays)."""
    suspended = bool((cron_job.get("spec") or {}).get("suspend"))
    if migration_running:
        return True if not suspended else None
    by_gate = "f:suspend" in applied_by(cron_job, MIGRATION_GATE_FIELD_MANAGER).get("f:spec", {})
    return False if suspended and by_gate else None


@dataclass(frozen=True)
class WorkloadDecision:
    desired: list[dict[str, Any]] = field(default_factory=list)
    write: list[dict[str, Any]] = field(default_factory=list)  # with the web Deployment, after it
    held: list[dict[str, Any]] = field(default_factory=list)  # wait for the gate, hand edits included
    suspend: list[tuple[dict[str, Any], bool]] = field(default_factory=list)  # (live CronJob, spec.suspend)
    delete: list[Key] = field(default_factory=list)

    def waiting(self) -> str:
        """What waits with the web Deployment, for the condition's message."""
        return ", ".join(f"{m['kind']} {m['metadata']['name']}" for m in self.held)


def decide_workloads(desired: list[dict[str, Any]], live: dict[Key, dict[str, Any]], gate: Gate) -> WorkloadDecision:
    """`live`: the app's own workloads as read (by label), keyed by kind and name."""
    decision = WorkloadDecision(desired=desired)
    running = migration_runs(gate)
    for manifest in desired:
        key = key_of(manifest)
        current = live.get(key)
        if manifest["kind"] in RUNS_PODS and gate.hold is not None and changes_pod_template(manifest, current):
            decision.held.append(manifest)
        elif needs_apply(manifest, current):
            decision.write.append(manifest)
        if key[0] is CRON_JOB and current is not None:
            suspend = suspension(current, running)
            if suspend is not None:
                decision.suspend.append((current, suspend))
    wanted = {key_of(m) for m in desired}
    decision.delete.extend(sorted((key for key in live if key not in wanted), key=lambda k: (k[0].kind, k[1])))
    return decision


def by_key(objects: list[dict[str, Any]], kind: Kind) -> dict[Key, dict[str, Any]]:
    return {(kind, obj["metadata"]["name"]): obj for obj in objects}
