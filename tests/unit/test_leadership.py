"""Who may hold the leader Lease, decided from the Lease as read."""

from __future__ import annotations

import datetime

from fastapi_operator.leadership import LEASE_SECONDS, decide

NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.timezone.utc)


def lease(holder: str | None, renewed_seconds_ago: float) -> dict:
    renewed = (NOW - datetime.timedelta(seconds=renewed_seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"metadata": {"resourceVersion": "1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renewed}}


def test_no_lease_is_taken():
    assert decide(None, "a", NOW).take


def test_the_holder_renews_without_a_transition():
    decision = decide(lease("a", 3), "a", NOW)
    assert decision.take and not decision.transition


def test_a_live_holder_is_left_alone():
    assert not decide(lease("b", LEASE_SECONDS - 1), "a", NOW).take


def test_an_expired_holder_is_taken_over():
    decision = decide(lease("b", LEASE_SECONDS + 1), "a", NOW)
    assert decision.take and decision.transition


def test_a_released_lease_is_taken():
    assert decide(lease(None, 1), "a", NOW).take
