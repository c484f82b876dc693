"""The Argo CD health check, run by a Lua 5.1 interpreter against status fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
CUSTOMIZATION = ARGOCD / "resource_customizations" / "fastapi-operator.dev" / "FastAPIApp"
SCRIPT = (CUSTOMIZATION / "health.lua").read_text()


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


# Every state the check tells apart, shaped as Argo CD's own resource_customizations folder keeps
# them (health_test.yaml and testdata/), so the check can be offered upstream as it is. Run here
# under Lua 5.1 (lupa), for a quick answer, and in the kind worker by Argo CD's own gopher-lua
# runtime (tests/e2e/test_argocd.py), which is the truth: it has no string or math library.
HEALTH_TESTS = yaml.safe_load((CUSTOMIZATION / "health_test.yaml").read_text())["tests"]
CASES = [pytest.param(yaml.safe_load((CUSTOMIZATION / case["inputPath"]).read_text()), case["healthStatus"],
                      id=Path(case["inputPath"]).stem) for case in HEALTH_TESTS]


def test_every_state_is_in_the_upstream_shaped_tests():
    assert len(CASES) >= 13
    assert {case.values[1]["status"] for case in CASES} == {"Healthy", "Progressing", "Degraded"}
    assert sorted(path.name for path in (CUSTOMIZATION / "testdata").iterdir()) == sorted(
        Path(case["inputPath"]).name for case in HEALTH_TESTS)


@pytest.mark.parametrize("obj,expected", CASES)
def test_health_follows_the_conditions(obj, expected):
    assert health(obj) == (expected["status"], expected["message"])


def test_health_in_lua_matches_the_status_the_operator_writes():
    """A fixture is only as good as its likeness to real status: the first Healthy one is what
    compute_status writes for an available app."""
    from fastapi_operator.status import compute_status
    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                  "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}
    status = compute_status(generation=2, url=None, selector="", deployment=deployment, tls=False, certificate=None,
                            error=None, previous=None)
    assert health({"metadata": {"generation": 2}, "status": status})[0] == "Healthy"


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
