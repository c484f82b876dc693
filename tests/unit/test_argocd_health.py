"""The Argo CD health check, run by a Lua 5.1 interpreter against status fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()


def to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    assert runtime.eval("_VERSION") == "Lua 5.1"
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(SCRIPT)
    return result["status"], result["message"]


def app(generation: int = 2, observed: int | None = 2, **conditions: tuple[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [
        {"type": t, "status": s, "reason": r, "message": f"{t} says {r}", "observedGeneration": observed}
        for t, (s, r) in conditions.items()]}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


READY = dict(Ready=("True", "Ready"), Available=("True", "DeploymentAvailable"),
             CertificateReady=("True", "CertificateIssued"), Reconciled=("True", "Reconciled"))


@pytest.mark.parametrize("obj,expected", [
    pytest.param(app(**READY), "Healthy", id="ready-at-current-generation"),
    pytest.param({"metadata": {"generation": 1}}, "Progressing", id="no-status-yet"),
    pytest.param(app(generation=3, observed=2, **READY), "Progressing", id="status-lags-generation"),
    pytest.param(app(**{**READY, "Ready": ("False", "NotAvailable"), "Available": ("False", "RollingOut")}),
                 "Progressing", id="rolling-out"),
    pytest.param(app(**{**READY, "Ready": ("False", "CertificateNotReady"),
                        "CertificateReady": ("Unknown", "CertificatePending")}), "Progressing", id="certificate-pending"),
    pytest.param(app(**{**READY, "Ready": ("False", "NotReconciled"), "Reconciled": ("False", "Conflict")}),
                 "Degraded", id="reconcile-failed"),
    pytest.param(app(**{**READY, "Ready": ("False", "NotReconciled"), "Reconciled": ("False", "MigrationRunning")}),
                 "Progressing", id="migration-running"),
    pytest.param(app(**{**READY, "Ready": ("False", "NotReconciled"), "Reconciled": ("False", "MigrationFailed")}),
                 "Degraded", id="migration-failed"),
    pytest.param(app(**{**READY, "Ready": ("False", "NotAvailable"), "Available": ("False", "RolloutFailed")}),
                 "Degraded", id="rollout-failed"),
    pytest.param(app(**{**READY, "Ready": ("False", "RoutePending")}), "Progressing", id="gateway-not-reported-yet"),
    pytest.param(app(**{**READY, "Ready": ("False", "RouteNotAccepted")}), "Degraded", id="gateway-refuses-route"),
    pytest.param(app(**{**READY, "Ready": ("False", "ListenerSetsNotAllowed")}), "Degraded",
                 id="gateway-allows-no-listener-sets"),
    pytest.param(app(generation=3, observed=3, **{**READY, "Ready": ("False", "NotReconciled"),
                                                  "Reconciled": ("False", "InvalidSpec")}), "Degraded",
                 id="invalid-spec"),
])
def test_health_follows_the_conditions(obj, expected):
    status, message = health(obj)
    assert status == expected, message


def test_degraded_message_carries_the_reason():
    _, message = health(app(**{**READY, "Reconciled": ("False", "Conflict")}))
    assert message.startswith("Conflict:")


def test_argocd_cm_embeds_the_same_script():
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert config["data"]["resource.customizations.health.fastapi-operator.dev_FastAPIApp"] == SCRIPT


def test_a_worker_whose_rollout_failed_degrades_the_app_in_argo_cd_and_a_rolling_one_is_progress():
    """Health reads the conditions, and the operator's status folds every worker into them."""
    from fastapi_operator.status import compute_status

    def deployment(name: str, labels: dict[str, str], stalled: bool) -> dict[str, Any]:
        progressing = {"type": "Progressing", "status": "False" if stalled else "True",
                       "reason": "ProgressDeadlineExceeded" if stalled else "NewReplicaSetAvailable",
                       "message": f"ReplicaSet of {name} has timed out progressing"}
        return {"kind": "Deployment", "metadata": {"name": name, "generation": 1, "labels": labels},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                           "availableReplicas": 0 if stalled else 1, "readyReplicas": 0 if stalled else 1,
                           "conditions": [progressing]}}
    web = deployment("shop", {}, stalled=False)
    for stalled, expected in ((True, "Degraded"), (False, "Healthy")):
        worker = deployment("shop.queue", {"fastapi-operator.dev/worker": "queue"}, stalled=stalled)
        status = compute_status(generation=2, url=None, selector="", deployment=web, tls=False, certificate=None,
                                error=None, previous=None, workloads=[worker])
        state, message = health({"metadata": {"generation": 2}, "status": status})
        assert state == expected, message
        if stalled:
            assert "worker queue" in message
