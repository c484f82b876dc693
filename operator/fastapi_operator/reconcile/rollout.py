"""What one reconcile writes, holds and deletes, and why. Pure: live objects in, a decision out.

A rollout is one unit. The routing children (what the running pods depend on: the Service, the
NetworkPolicy that makes their trust in forwarded headers safe, the Ingresses, routes and
Middlewares with the path prefix the pods' --root-path matches) keep serving the pods that run
until the pods of the spec have replaced them; then they move. A routing child that does not exist
yet is made before the pods, so pods that trust forwarded headers never run without the policy.
Everything else (the issuer, a Gateway certificate, the autoscaler, the disruption budget) moves
at once. The pods themselves wait for the migration gate (migrations.py).

Timeline of a change to the image, port and path, with a migration:
  1. at once: issuer, certificate, autoscaler, budget; missing routing children; host claims
  2. the migration Job starts (after every check that could refuse the rollout), and runs alone
  3. the Job succeeds: the Deployment rolls, new pods next to old ones (maxUnavailable 0)
  4. the old pods are gone: the routing children move, then stale ones are deleted
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..compare import changes_pod_template, needs_apply
from ..errors import ReconcileError, RolloutInProgress
from ..kinds import ROLLS_WITH_PODS  # the children the running pods depend on: they move with them
from ..kube import CLUSTER_ISSUER, DEPLOYMENT, Kind, kind_of
from .migrations import Gate

Key = tuple[Kind, str]


def key_of(manifest: dict[str, Any]) -> Key:
    return kind_of(manifest), manifest["metadata"]["name"]


def pods_run_template(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Do all of the Deployment's pods run the template the spec renders? True once the
    controller has seen the template and no pod of an older one is left."""
    if live is None or changes_pod_template(desired, live):
        return False
    status = live.get("status") or {}
    return (status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
            and status.get("replicas", 0) == status.get("updatedReplicas", 0))


@dataclass(frozen=True)
class Decision:
    write: list[dict[str, Any]]  # before the Job and the Deployment, in the rendered order
    desired_deployment: dict[str, Any]  # checked (a dry run) before a Job starts for it
    deployment: dict[str, Any] | None  # None: unchanged, or held at its current pods
    start_job: dict[str, Any] | None  # the migration Job to create, after `write`, before the Deployment
    held: list[dict[str, Any]] = field(default_factory=list)  # routing children that wait for the pods
    delete: list[Key] = field(default_factory=list)
    held_deletions: list[Key] = field(default_factory=list)
    hold: ReconcileError | None = None  # why the app is not yet what the spec says
    deployment_held: bool = False  # its pods wait for the gate: its hand edits wait too


def decide(manifests: list[dict[str, Any]], live: dict[Key, dict[str, Any] | None], owned: set[Key],
           gate: Gate) -> Decision:
    """`live`: every possible child as read (None when absent); `owned`: those the app controls.
    `gate`: the migration gate for the spec."""
    desired_deployment = next(m for m in manifests if kind_of(m) is DEPLOYMENT)
    live_deployment = live.get(key_of(desired_deployment))
    template_changes = changes_pod_template(desired_deployment, live_deployment)
    deployment_held = gate.hold is not None and template_changes
    # Once the gate is open the template is written this reconcile: the pods roll, and the
    # routing waits for them to be replaced.
    pods_current = pods_run_template(desired_deployment, live_deployment)

    write, held = [], []
    for manifest in manifests:
        key = key_of(manifest)
        if key[0] is CLUSTER_ISSUER:
            write.append(manifest)  # shared: compared under the shared objects' lock (shared.py)
            continue
        if key[0] is DEPLOYMENT or not needs_apply(manifest, live.get(key)):
            continue
        if key[0] in ROLLS_WITH_PODS and live.get(key) is not None and not pods_current:
            held.append(manifest)
        else:
            write.append(manifest)
    desired_keys = {key_of(m) for m in manifests}
    stale = sorted((key for key in owned if key not in desired_keys), key=lambda key: (key[0].kind, key[1]))
    held_deletions = [key for key in stale if key[0] in ROLLS_WITH_PODS and not pods_current]
    deployment = None
    if not deployment_held and needs_apply(desired_deployment, live_deployment):
        deployment = desired_deployment

    hold = gate.hold
    if hold is None and (held or held_deletions):
        moving = sorted({f"{k[0].kind} {k[1]}" for k in [key_of(m) for m in held] + held_deletions})
        hold = RolloutInProgress(
            f"{', '.join(moving)} keep serving the pods that run now, and change once the Deployment's new "
            f"pods have replaced them")
    return Decision(write=write, desired_deployment=desired_deployment, deployment=deployment, start_job=gate.start,
                    held=held, delete=[key for key in stale if key not in held_deletions], held_deletions=held_deletions,
                    hold=hold, deployment_held=deployment_held)
