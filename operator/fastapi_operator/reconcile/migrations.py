"""The migration gate: at most one migration Job of an app runs at a time, and the pods of a new
version start only once the Job of the spec they run has succeeded. Pure: the reconciler reads
the Jobs, this decides, the reconciler writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import MigrationFailed, MigrationQueued, MigrationRunning, ReconcileError
from ..render.migration import KEPT_MIGRATION_JOBS

DEADLINE_EXCEEDED = "DeadlineExceeded"


def step_names(job: dict[str, Any]) -> list[str]:
    """The preStart steps the Job runs: its containers but the sidecars (which run beside them)."""
    spec = job["spec"]["template"]["spec"]
    return [c["name"] for c in spec.get("initContainers", []) + spec["containers"] if c.get("restartPolicy") != "Always"]


def job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_ and c.get("status") == "True"), None)


def job_finished(job: dict[str, Any]) -> bool:
    return bool(job_condition(job, "Complete") or job_condition(job, "Failed"))


def _name(job: dict[str, Any]) -> str:
    return job["metadata"]["name"]


@dataclass(frozen=True)
class Gate:
    """`hold`: why the pods of the new version must wait (None: they may roll). `start`: the Job
    to create now, once everything that could still refuse the rollout has been checked."""

    hold: ReconcileError | None
    start: dict[str, Any] | None = None


def migration_gate(namespace: str, desired: dict[str, Any] | None, jobs: list[dict[str, Any]]) -> Gate:
    """`desired`: the Job the spec renders (None without OncePerRollout steps); `jobs`: the app's
    migration Jobs as they are. A Job still running is never cut short, whichever spec it was for:
    whatever comes after it waits, rolling back included, since that Job still moves the database."""
    desired_name = _name(desired) if desired is not None else None
    current = next((job for job in jobs if _name(job) == desired_name), None)
    earlier = sorted((job for job in jobs if _name(job) != desired_name and not job_finished(job)),
                     key=lambda job: job["metadata"].get("creationTimestamp") or "")
    if earlier:
        running = ", ".join(f"Job {namespace}/{_name(job)}" for job in earlier)
        waiting = f"Job {namespace}/{desired_name}" if desired_name else "the new version"
        return Gate(MigrationQueued(
            f"{waiting} waits for {running} (an earlier migration, still running) to finish: two migrations never "
            f"run at once, and a running one is never cut short. The Deployment keeps its current pods. If it can "
            f"never finish (its pod cannot start), delete it: `kubectl delete job -n {namespace} "
            f"{_name(earlier[0])}`"))
    if desired is None:
        return Gate(None)
    if current is None:
        return Gate(running_hold(namespace, desired), start=desired)
    return Gate(job_hold(namespace, current))


def running_hold(namespace: str, job: dict[str, Any]) -> MigrationRunning:
    return MigrationRunning(f"Job {namespace}/{_name(job)} runs preStart {', '.join(step_names(job))} once for "
                            f"this rollout; the Deployment keeps its current pods until it succeeds")


def job_hold(namespace: str, job: dict[str, Any]) -> ReconcileError | None:
    """Why the pods must wait for this Job, or None once it succeeded."""
    if job_condition(job, "Complete"):
        return None
    failed = job_condition(job, "Failed")
    if not failed:
        return running_hold(namespace, job)
    name = f"Job {namespace}/{_name(job)}"
    steps = ", ".join(step_names(job))
    if failed.get("reason") == DEADLINE_EXCEEDED:
        deadline = job["spec"].get("activeDeadlineSeconds")
        why = (f"did not finish within spec.migrationDeadlineSeconds ({deadline} s): its pod may never have "
               f"started (`kubectl describe job -n {namespace} {_name(job)}` shows why: an image that cannot be "
               f"pulled, a quota, a node selector no node matches), or the migration needs longer (raise "
               f"spec.migrationDeadlineSeconds)")
    else:
        why = f"failed: {failed.get('message') or failed.get('reason') or 'its pod failed'}"
    return MigrationFailed(
        f"{name} (preStart {steps}) {why}. The Deployment stays at its current version. Read `kubectl logs -n "
        f"{namespace} job/{_name(job)}`, then fix the step or the image in the FastAPIApp (a changed spec starts "
        f"a new Job), or delete the Job to run it again")


def jobs_to_prune(jobs: list[dict[str, Any]], desired: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Keep the current Job and the newest finished ones for their logs; a Job still running is
    never cut short (a migration stopped halfway is worse than one that finishes)."""
    current = _name(desired) if desired is not None else None
    finished = sorted((job for job in jobs if _name(job) != current and job_finished(job)),
                      key=lambda job: job["metadata"].get("creationTimestamp") or "", reverse=True)
    keep = KEPT_MIGRATION_JOBS - 1 if desired is not None else 0
    return finished[keep:]
