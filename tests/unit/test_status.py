"""Status conditions, per the Kubernetes API conventions."""

from __future__ import annotations

import datetime

from fastapi_operator.errors import Conflict, InvalidSpec
from fastapi_operator.reconcile.reporting import first_status_wait
from fastapi_operator.status import compute_status, status_changed


def deployment(replicas=2, ready=2, updated=2, available=2, generation=3, observed=3, total=None):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "replicas": replicas if total is None else total,
                   "readyReplicas": ready, "updatedReplicas": updated, "availableReplicas": available},
    }


def ready_certificate(status="True"):
    return {"status": {"conditions": [{"type": "Ready", "status": status, "reason": "Ready", "message": "ok"}]}}


def status(**overrides):
    arguments = dict(generation=4, url="https://a.example.com", selector="s", deployment=deployment(), tls=True,
                     certificate=ready_certificate(), error=None, previous=None, timestamp="2026-01-01T00:00:00Z")
    arguments.update(overrides)
    return compute_status(**arguments)


def conditions(result):
    return {c["type"]: (c["status"], c["reason"]) for c in result["conditions"]}


def test_ready_when_available_certified_and_reconciled():
    result = status()
    assert conditions(result) == {"Ready": ("True", "Ready"), "Available": ("True", "DeploymentAvailable"),
                                  "CertificateReady": ("True", "CertificateIssued"), "Reconciled": ("True", "Reconciled")}
    assert (result["observedGeneration"], result["readyReplicas"], result["replicasSummary"]) == (4, 2, "2/2")
    assert all(c["observedGeneration"] == 4 for c in result["conditions"])


def test_certificate_unknown_while_there_is_none():
    result = status(certificate=None)
    assert conditions(result)["CertificateReady"] == ("Unknown", "CertificatePending")
    assert conditions(result)["Ready"][0] == "False"


def test_no_tls_needs_no_certificate():
    assert conditions(status(tls=False, certificate=None))["CertificateReady"][0] == "True"


def test_rolling_out_is_not_available():
    result = status(deployment=deployment(updated=1, available=2, total=3))
    assert conditions(result)["Available"] == ("False", "RollingOut")


def test_a_deployment_controller_behind_the_generation_is_not_available():
    assert conditions(status(deployment=deployment(observed=2)))["Available"] == ("False", "RollingOut")


def test_a_failed_rollout_says_so():
    failed = deployment(available=1)
    failed["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": "timed out"}]
    assert conditions(status(deployment=failed))["Available"] == ("False", "RolloutFailed")


def test_a_reconcile_error_is_reconciled_false_with_its_reason():
    result = status(error=Conflict("Deployment shop/hello already exists"))
    assert conditions(result)["Reconciled"] == ("False", "Conflict")
    assert conditions(result)["Ready"] == ("False", "NotReconciled")


def test_transition_time_is_kept_while_status_is_unchanged():
    first = status()
    second = status(previous=first, timestamp="2026-02-02T00:00:00Z")
    assert [c["lastTransitionTime"] for c in second["conditions"]] == ["2026-01-01T00:00:00Z"] * 4
    assert not status_changed(second, first)
    third = status(previous=second, certificate=None, timestamp="2026-03-03T00:00:00Z")
    changed = {c["type"]: c["lastTransitionTime"] for c in third["conditions"]}
    assert changed["CertificateReady"] == "2026-03-03T00:00:00Z"
    assert changed["Available"] == "2026-01-01T00:00:00Z"
    assert status_changed(third, second)


def test_a_new_apps_first_status_waits_moments_for_its_deployment_and_nothing_else_waits():
    made = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.timezone.utc)
    body = {"metadata": {"name": "shop", "creationTimestamp": "2026-12-05T12:00:00Z"}}
    progressing = {"conditions": [{"type": "Available", "status": "False"}]}
    available = {"conditions": [{"type": "Available", "status": "True"}]}

    def wait(status=progressing, error=None, after=1.0, of=body, settle=3.0, deployment=None):
        return first_status_wait(of, status, error, settle, made + datetime.timedelta(seconds=after), deployment)

    assert wait() == 2.0 and wait(after=0) == 3.0
    assert wait(status=available) is None, "Available: written at once"
    assert wait(error=InvalidSpec("spec.replicas: ...")) is None, "a problem: written at once"
    assert wait(of={**body, "status": progressing}) is None, "only the first status waits"
    assert wait(after=3.0) is None and wait(after=-1.0) is None, "its time is up, or a clock behind the server's"
    assert wait(settle=0) is None, "not asked to wait (the CLI, direct reconciles)"
    assert wait(of={"metadata": {"name": "shop"}}) is None
    # An operator busy with many new apps comes to this one 20 s after it was made: the wait is
    # counted from the Deployment it makes then, which is what has a moment to become Available.
    late = {"metadata": {"name": "shop", "creationTimestamp": "2026-12-05T12:00:20Z"}}
    assert wait(after=21.0, deployment=late) == 2.0 and wait(after=23.0, deployment=late) is None
    adopted = {"metadata": {"name": "shop", "creationTimestamp": "2026-12-01T08:00:00Z"}}
    assert wait(after=1.0, deployment=adopted) is None, "a Deployment made long before: written at once"
