"""A change to every app's pods that comes from the operator (here: a changed setting, as an
upgrade would bring a changed rendering) rolls a few apps at a time, never all at once."""

from __future__ import annotations

import os
import threading
import time

from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP
from fastapi_operator.status import availability
from tests.harness import OperatorProcess, condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.manifests import app_manifest

# 20 on the control plane; fewer where pods really start on one node (the kind tier sets it).
APPS = int(os.environ.get("FASTAPI_OPERATOR_TEST_PACED_APPS", "20"))
LIMIT = 3


def test_an_operator_change_rolls_at_most_the_limit_of_apps_at_once(cluster, namespace, operator_paused, tmp_path,
                                                                     report):
    settings = {**SESSION_SETTINGS, "namespaces": namespace}
    first = OperatorProcess(cluster, tmp_path / "first.log", settings=settings)
    first.start()
    try:
        cluster.apply(*[app_manifest(f"app-{i:02}", namespace, ingress={"hosts": [f"app-{i:02}.example.com"]},
                                     tls={"enabled": False}) for i in range(APPS)])
        eventually(lambda: sum(condition(app, "Ready").get("status") == "True"
                               for app in cluster.kube.list(FASTAPIAPP, namespace)) == APPS, timeout=300,
                   message="every app Ready")
    finally:
        first.stop()

    most, queued, stop = [0], set(), threading.Event()

    def watch_rollouts():
        while not stop.is_set():
            rolling = [d for d in cluster.kube.list(DEPLOYMENT, namespace) if availability(d).status != "True"]
            most[0] = max(most[0], len(rolling))
            queued.update(app["metadata"]["name"] for app in cluster.kube.list(FASTAPIAPP, namespace)
                          if condition(app, "Reconciled").get("reason") == "RolloutQueued")
            time.sleep(0.05)
    watcher = threading.Thread(target=watch_rollouts, daemon=True)
    watcher.start()
    upgraded = OperatorProcess(cluster, tmp_path / "upgraded.log", settings={
        **settings, "forwarded_allow_ips": "10.0.0.0/8", "max_concurrent_operator_rollouts": str(LIMIT)})
    started = time.monotonic()
    upgraded.start()
    try:
        def all_rolled():
            deployments = cluster.kube.list(DEPLOYMENT, namespace)
            return len(deployments) == APPS and all(
                "10.0.0.0/8" in d["spec"]["template"]["spec"]["containers"][0]["command"]
                and availability(d).status == "True" for d in deployments)
        eventually(all_rolled, timeout=480, message="every app rolled to the new setting")
        eventually(lambda: all(condition(app, "Reconciled").get("status") == "True"
                               for app in cluster.kube.list(FASTAPIAPP, namespace)), timeout=60)
        took = time.monotonic() - started
    finally:
        stop.set()
        watcher.join()
        upgraded.stop()
    report("operator-paced rollout", f"{APPS} apps, limit {LIMIT}: at most {most[0]} rolling at once, "
                                     f"{len(queued)} seen RolloutQueued, all rolled in {took:.1f} s")
    assert most[0] <= LIMIT, f"{most[0]} apps rolled at once"
    assert queued, "no app ever said it waits for its turn"
