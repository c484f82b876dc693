"""Two replicas, one active: a Lease elects the one that reconciles, the standby stays healthy and
writes nothing, and takes over within 15 s when the active one is killed."""

from __future__ import annotations

from tests.integration.conftest import SESSION_SETTINGS
from tests.scenarios import failover

TAKEOVER_LIMIT_SECONDS = 15


def test_two_replicas_one_active_and_the_standby_takes_over_within_fifteen_seconds(
        cluster, namespace, operator_paused, tmp_path, report):
    observed = failover(cluster, namespace, tmp_path, SESSION_SETTINGS, timeout=TAKEOVER_LIMIT_SECONDS + 5)
    report("HA: active replica SIGKILLed, standby reconciled a new app after", f"{observed.seconds:.1f}s")
    assert observed.active_made_the_first_app, "the Lease's holder did not make the first app"
    assert not observed.standby_wrote, "the standby wrote"
    assert observed.standby_liveness_status == 200, "the standby must report healthy"
    assert observed.seconds <= TAKEOVER_LIMIT_SECONDS
    assert observed.new_holder != observed.first_holder and observed.standby_leads
