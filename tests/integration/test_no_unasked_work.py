"""No work that nothing asked for: values the API server drops never cause a write, however often
the app is reconciled."""

from __future__ import annotations

import json
import time

from fastapi_operator.kube import DEPLOYMENT
from tests.harness import condition, eventually
from tests.integration.test_metrics import own_operator, sample
from tests.manifests import SMALL_RESOURCES, app_manifest

MUTATING = ("POST", "PUT", "PATCH", "DELETE")

RECONCILES = 4


def reconcile_again(cluster, namespace: str, name: str, times: int) -> None:
    """An edit of the app's metadata queues a reconcile of it, as a resync does, without a spec change."""
    for count in range(times):
        cluster.kubectl("annotate", "fapp", name, "-n", namespace, f"test/nudge={count}", "--overwrite")
        time.sleep(1)


def mutating_requests(process) -> float:
    """What this test's own operator sent that could change something (its rest_client metrics)."""
    text = process.metrics()
    return sum(sample(text, "rest_client_requests_total", method=method) for method in MUTATING)


def test_empty_values_the_api_server_drops_are_written_once(cluster, namespace, operator_paused, tmp_path, report):
    # Empty strings a user may well write, and the API server drops (omitempty): each would
    # otherwise be "missing" from the live Deployment at every compare.
    spec = {"env": [{"name": "EMPTY", "value": ""},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"prefix": "", "configMapRef": {"name": "settings", "optional": True}}],
            "tolerations": [{"key": "", "operator": "Exists"}],
            "resources": SMALL_RESOURCES}
    process = own_operator(cluster, namespace, tmp_path, "empty-values")
    try:
        judge_empty_values(cluster, namespace, process, spec, report)
    finally:
        process.stop()


def judge_empty_values(cluster, namespace, process, spec, report):
    cluster.apply(app_manifest("empty", namespace, **spec))
    # Available too: on real pods (the kind tier) the status moves until they are up, and that
    # status write is work the pods asked for.
    eventually(lambda: condition(cluster.app(namespace, "empty"), "Reconciled").get("status") == "True"
               and condition(cluster.app(namespace, "empty"), "Available").get("status") == "True",
               timeout=180, interval=0.5, message="the app reconciled and Available")
    live = cluster.get(DEPLOYMENT, namespace, "empty")["spec"]["template"]["spec"]
    # What the server made of it: the empty strings gone, fieldRef.apiVersion defaulted.
    assert "value" not in live["containers"][0]["env"][0], json.dumps(live["containers"][0]["env"])
    eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
    time.sleep(2)
    before = mutating_requests(process), sample(process.metrics(), "controller_runtime_reconcile_total")
    reconcile_again(cluster, namespace, "empty", RECONCILES)
    time.sleep(2)
    after = mutating_requests(process), sample(process.metrics(), "controller_runtime_reconcile_total")
    report(f"scale: mutating requests in {RECONCILES} reconciles of an app with empty values the API server drops",
           f"{after[0] - before[0]:.0f} (reconciles: {after[1] - before[1]:.0f})")
    assert after[1] - before[1] >= RECONCILES, "the nudges did not reconcile the app"
    assert after[0] == before[0], f"{after[0] - before[0]:.0f} mutating requests while nothing changed"
    # Not blind: a real change to the same field is written.
    cluster.kubectl("patch", "fapp", "empty", "-n", namespace, "--type=json",
                    "-p", '[{"op": "replace", "path": "/spec/env/0/value", "value": "now"}]')
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "empty")["spec"]["template"]["spec"]["containers"][0]
               ["env"][0].get("value") == "now", message="the new value reached the Deployment")
