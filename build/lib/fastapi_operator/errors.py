"""Errors that a reconcile reports to the user as a condition and an Event."""

from __future__ import annotations


class ReconcileError(Exception):
    """A reconcile could not complete; `reason` is the CamelCase condition reason users search for.

    Retried with capped backoff unless `retry` is False: the fix (a deleted conflicting object, a
    created ClusterIssuer, an installed CRD) may come from objects the operator does not watch."""

    reason = "ReconcileError"
    retry = True
    event_type = "Warning"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(ReconcileError):
    """The spec passed the schema but cannot be built: the message says what to change."""

    reason = "InvalidSpec"


class Conflict(ReconcileError):
    """An object the app needs already exists and belongs to someone else."""

    reason = "Conflict"


class MissingAPI(ReconcileError):
    """A CRD the app needs (cert-manager, Traefik) is not installed in the cluster."""

    reason = "MissingAPI"


class MigrationRunning(ReconcileError):
    """The rollout waits for its migration Job; the Job's watch events bring the app back."""

    reason = "MigrationRunning"
    retry = False
    event_type = "Normal"  # progress, not a problem


class MigrationFailed(ReconcileError):
    """The migration Job failed, so the Deployment stays at its current version until the spec
    changes or the Job is deleted (both are watched)."""

    reason = "MigrationFailed"
    retry = False


class MigrationQueued(ReconcileError):
    """A migration Job of an earlier spec still runs: the next one waits for it (two migrations
    never run at once). The Job's watch events bring the app back."""

    reason = "MigrationQueued"
    retry = False
    event_type = "Normal"


class RolloutInProgress(ReconcileError):
    """The routing children (Service, NetworkPolicy, Ingress, routes, Middlewares) keep serving the
    pods that run until the new pods replace them; the Deployment's watch events bring the app back."""

    reason = "RolloutInProgress"
    retry = False
    event_type = "Normal"


class RolloutQueued(ReconcileError):
    """A change to the app's pods that comes from the operator waits for a place among the
    operator's paced rollouts; retried, and woken when a place frees."""

    reason = "RolloutQueued"
    event_type = "Normal"


class NotAllowed(ReconcileError):
    """The spec asks for what the platform's policy does not allow (settings allowed_*,
    namespace_domains, max_hosts_per_namespace); nothing is made. A changed spec brings it back."""

    reason = "NotAllowed"
    retry = False
