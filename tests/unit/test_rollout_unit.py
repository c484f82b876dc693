"""A rollout is one unit, decided without a cluster: the migration gate (one Job at a time, the
pods wait for the Job of their spec) and what moves before, with and after the pods."""

from __future__ import annotations

import copy

from fastapi_operator.meta import strip_prefix_middleware_name
from fastapi_operator.errors import MigrationFailed, MigrationQueued, MigrationRunning, RolloutInProgress
from fastapi_operator.kube import DEPLOYMENT, INGRESS, MIDDLEWARE, NETWORK_POLICY, kind_of
from fastapi_operator.managed_fields import _without_identity
from fastapi_operator.meta import FIELD_MANAGER
from fastapi_operator.reconcile.migrations import Gate, jobs_to_prune, migration_gate
from fastapi_operator.reconcile.rollout import decide, key_of, pods_run_template

MIGRATE = {"name": "migrate", "command": ["alembic", "upgrade", "head"], "run": "OncePerRollout"}
INGRESS_SPEC = {"hosts": ["hello.example.com"], "path": "/api", "className": "traefik"}
TLS_OFF = {"enabled": False}


def job(name, state=None, created="2026-01-01T00:00:00Z", reason=None):
    conditions = [{"type": state, "status": "True", **({"reason": reason} if reason else {})}] if state else []
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"activeDeadlineSeconds": 60, "template": {"spec": {"containers": [{"name": "migrate"}]}}},
            "status": {"conditions": conditions}}


def test_a_new_migration_waits_for_an_earlier_one_still_running():
    gate = migration_gate("shop", job("v3"), [job("v1", "Complete"), job("v2")])
    assert isinstance(gate.hold, MigrationQueued) and gate.start is None
    assert "Job shop/v3 waits for Job shop/v2" in gate.hold.message


def test_rolling_back_while_a_migration_runs_waits_for_it_though_the_old_job_succeeded():
    gate = migration_gate("shop", job("v1"), [job("v1", "Complete"), job("v2")])
    assert isinstance(gate.hold, MigrationQueued)


def test_with_no_earlier_migration_running_the_job_of_the_spec_starts():
    desired = job("v2")
    gate = migration_gate("shop", desired, [job("v1", "Complete"), job("v0", "Failed")])
    assert gate.start is desired and isinstance(gate.hold, MigrationRunning)


def test_the_gate_opens_only_when_the_job_of_the_spec_succeeded():
    assert migration_gate("shop", job("v2"), [job("v2", "Complete")]) == Gate(None)
    assert isinstance(migration_gate("shop", job("v2"), [job("v2")]).hold, MigrationRunning)
    assert isinstance(migration_gate("shop", job("v2"), [job("v2", "Failed")]).hold, MigrationFailed)


def test_a_migration_past_its_deadline_says_what_to_do():
    hold = migration_gate("shop", job("v2"), [job("v2", "Failed", reason="DeadlineExceeded")]).hold
    assert isinstance(hold, MigrationFailed)
    assert "spec.migrationDeadlineSeconds (60 s)" in hold.message and "kubectl describe job" in hold.message


def test_steps_removed_while_a_migration_runs_still_wait_for_it():
    assert isinstance(migration_gate("shop", None, [job("v2")]).hold, MigrationQueued)
    assert migration_gate("shop", None, [job("v2", "Complete")]) == Gate(None)


def test_running_jobs_are_never_pruned_and_three_are_kept():
    jobs = [job(f"v{i}", "Complete", created=f"2026-01-0{i}T00:00:00Z") for i in range(1, 6)] + [job("run")]
    pruned = [j["metadata"]["name"] for j in jobs_to_prune(jobs, job("v5"))]
    assert pruned == ["v2", "v1"]


def fields_trie(value):
    """The fields an apply of `value` sets, as managedFields says them (lists as leaves)."""
    if isinstance(value, dict):
        return {f"f:{key}": fields_trie(item) for key, item in value.items() if item is not None}
    return {}


def live_copy(manifest, **status):
    """The manifest as the API server holds it once the operator applied it."""
    obj = copy.deepcopy(manifest)
    fields = fields_trie(_without_identity(manifest))
    obj["metadata"].update(uid="u", generation=1, managedFields=[
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields}])
    obj["status"] = status
    return obj


def live_of(rendered, deployment_status=None):
    live = {}
    for manifest in rendered.manifests:
        status = deployment_status if kind_of(manifest) is DEPLOYMENT else {}
        live[key_of(manifest)] = live_copy(manifest, **(status or {}))
    return live


ROLLED = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2}


def test_while_the_migration_holds_the_routing_keeps_serving_the_old_pods(render):
    old = render(replicas=2, tls=TLS_OFF, ingress=INGRESS_SPEC, preStart=[MIGRATE])
    new = render(replicas=2, tls=TLS_OFF, ingress={**INGRESS_SPEC, "path": "/v2"}, port=8080, image="app:v2", preStart=[MIGRATE])
    live = live_of(old, ROLLED)
    decision = decide(new.manifests, live, set(live), migration_gate("default", new.migration, []))
    assert decision.deployment is None and decision.start_job is new.migration
    held = {key_of(m) for m in decision.held}
    assert {(INGRESS, "hello"), (MIDDLEWARE, strip_prefix_middleware_name("shop", "hello"))} <= held
    assert isinstance(decision.hold, MigrationRunning)
    # The NetworkPolicy names the port: nothing about it changes with the port.
    assert (NETWORK_POLICY, "hello") not in held and (NETWORK_POLICY, "hello") not in {key_of(m) for m in decision.write}


def test_once_the_gate_opens_the_pods_roll_and_the_routing_waits_for_them(render):
    old = render(replicas=2, tls=TLS_OFF, ingress=INGRESS_SPEC)
    new = render(replicas=2, tls=TLS_OFF, ingress={**INGRESS_SPEC, "path": "/v2"}, image="app:v2")
    live = live_of(old, ROLLED)
    decision = decide(new.manifests, live, set(live), Gate(None))
    assert decision.deployment is not None and decision.held
    assert isinstance(decision.hold, RolloutInProgress) and "Ingress hello" in decision.hold.message

    # The Deployment rolled: every pod runs the new template; the routing moves.
    rolled = live_of(old, ROLLED)
    rolled[key_of(decision.deployment)] = live_copy(decision.deployment, **ROLLED)
    after = decide(new.manifests, rolled, set(rolled), Gate(None))
    assert after.deployment is None and not after.held and after.hold is None
    assert (INGRESS, "hello") in {key_of(m) for m in after.write}


def test_old_pods_still_running_hold_the_routing(render):
    old = render(replicas=2, tls=TLS_OFF, ingress=INGRESS_SPEC)
    new = render(replicas=2, tls=TLS_OFF, ingress={**INGRESS_SPEC, "path": "/v2"})
    live = live_of(old, ROLLED)
    live[(DEPLOYMENT, "hello")] = live_copy(next(m for m in new.manifests if kind_of(m) is DEPLOYMENT),
                                            observedGeneration=1, replicas=3, updatedReplicas=1)
    assert not pods_run_template(next(m for m in new.manifests if kind_of(m) is DEPLOYMENT), live[(DEPLOYMENT, "hello")])
    assert decide(new.manifests, live, set(live), Gate(None)).held


def test_a_missing_policy_is_made_before_the_pods_and_a_stale_one_goes_after_them(render):
    plain = render(replicas=2)
    routed = render(replicas=2, tls=TLS_OFF, ingress=INGRESS_SPEC)
    live = live_of(plain, ROLLED)
    decision = decide(routed.manifests, live, set(live), Gate(None))
    assert (NETWORK_POLICY, "hello") in {key_of(m) for m in decision.write}, "pods trusting * without the policy"

    live = live_of(routed, ROLLED)
    decision = decide(plain.manifests, live, set(live), Gate(None))
    assert (NETWORK_POLICY, "hello") in decision.held_deletions and (NETWORK_POLICY, "hello") not in decision.delete


class FakeReads:
    """The cache's Deployments, as the pacer lists them."""

    def __init__(self):
        self.deployments = []

    def list(self, kind, namespace=None, label_selector=None):
        return self.deployments


def deployment(name, rolling):
    status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0 if rolling else 1}
    return {"metadata": {"namespace": "ns", "name": name, "generation": 1}, "spec": {"replicas": 1}, "status": status}


def test_the_pacer_admits_up_to_its_limit_and_wakes_the_longest_waiting():
    from fastapi_operator.errors import RolloutQueued
    from fastapi_operator.reconcile.pacing import Pacer

    reads, now = FakeReads(), [0.0]
    pacer = Pacer(reads, limit=2, clock=lambda: now[0])
    woken = []
    pacer.wake = woken.extend
    assert pacer.admit(("ns", "a")) is None and pacer.admit(("ns", "b")) is None
    assert pacer.admit(("ns", "a")) is None, "an app already rolling keeps its place"
    assert isinstance(pacer.admit(("ns", "c")), RolloutQueued) and isinstance(pacer.admit(("ns", "d")), RolloutQueued)
    reads.deployments = [deployment("a", rolling=False), deployment("b", rolling=True)]
    pacer.settled(("ns", "a"))
    assert woken == [("ns", "c")], "one place freed, the longest waiting app woken"
    assert pacer.admit(("ns", "c")) is None and isinstance(pacer.admit(("ns", "d")), RolloutQueued)
    # A restart forgets what it admitted; what rolls is counted from the Deployments.
    restarted = Pacer(reads, limit=2, clock=lambda: now[0])
    reads.deployments = [deployment("b", rolling=True), deployment("c", rolling=True)]
    assert isinstance(restarted.admit(("ns", "d")), RolloutQueued)
    # A worker's Deployment rolls with its app's and takes no place of its own.
    worker = deployment("c.queue", rolling=True)
    worker["metadata"]["labels"] = {"fastapi-operator.dev/worker": "queue"}
    reads.deployments = [deployment("b", rolling=True), worker]
    assert restarted.admit(("ns", "d")) is None


def test_only_a_pod_change_the_spec_did_not_ask_for_is_the_operators(render):
    from fastapi_operator.reconcile.pacing import comes_from_operator

    def deployment_of(rendered):
        return next(m for m in rendered.manifests if kind_of(m) is DEPLOYMENT)

    live = live_copy(deployment_of(render(replicas=2)), **ROLLED)
    assert not comes_from_operator(deployment_of(render(replicas=2)), live, 3, 3), "nothing changes"
    assert comes_from_operator(deployment_of(render(replicas=2, port=9000)), live, 3, 3), "same spec, new pods"
    assert not comes_from_operator(deployment_of(render(replicas=2, port=9000)), live, 4, 3), "the user's change"
    assert comes_from_operator(deployment_of(render(replicas=2, port=9000)), live, 4, None), "an upgrade from before"
    assert not comes_from_operator(deployment_of(render(replicas=2)), None, 1, None), "a new app"
