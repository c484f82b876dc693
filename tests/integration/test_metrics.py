"""The operator's /metrics: controller-runtime's names, so existing dashboards and alerts work, and
the operator's own about the apps; and what they show about work nobody asked for (a Gateway's
status rewritten every half second queues no app)."""

from __future__ import annotations

import re
import time

from fastapi_operator.kube import FASTAPIAPP, GATEWAY
from tests.harness import OperatorProcess, condition, eventually, sample
from tests.integration.conftest import SESSION_SETTINGS
from tests.integration.test_gateway import apply_gateway, gateway, gateway_app, write_status
from tests.manifests import SMALL_RESOURCES, app_manifest

CONTROLLER_RUNTIME_NAMES = [
    "controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds_bucket", "controller_runtime_active_workers",
    "controller_runtime_max_concurrent_reconciles", "workqueue_depth", "workqueue_adds_total",
    "workqueue_queue_duration_seconds_bucket", "workqueue_work_duration_seconds_bucket", "workqueue_retries_total",
    "workqueue_longest_running_processor_seconds", "rest_client_requests_total", "leader_election_master_status",
    "fastapi_operator_apps", "fastapi_operator_migrations", "fastapi_operator_cache_objects",
    "fastapi_operator_watch_requests_total",
    "fastapi_operator_spec_change_to_ready_seconds_bucket",
]


def own_operator(cluster, namespace, tmp_path, name="metrics") -> OperatorProcess:
    """An operator of this test's namespace alone, with no resync in the window: its counters
    count this test's work and nothing else."""
    process = OperatorProcess(cluster, tmp_path / f"{name}.log", resync_seconds=600,
                              settings={**SESSION_SETTINGS, "namespaces": namespace})
    process.start()
    return process


def test_the_operator_exposes_controller_runtimes_metrics_and_its_own(cluster, namespace, operator_paused, tmp_path,
                                                                       report):
    process = own_operator(cluster, namespace, tmp_path)
    try:
        eventually(lambda: sample(process.metrics(), "leader_election_master_status", name="fastapi-operator") == 1,
                   message="acting as the leader (no election: always)")
        before = process.metrics()
        cluster.apply(app_manifest("counted", namespace, resources=SMALL_RESOURCES),
                      app_manifest("broken", namespace, resources=SMALL_RESOURCES, ingress={"hosts": ["b.example.com"]},
                                   tls={"clusterIssuer": "no-such-issuer"}))
        eventually(lambda: condition(cluster.app(namespace, "counted"), "Ready").get("status") == "True",
                   message="the app Ready")
        # The apps' gauge reads the cache, which holds the operator's status write as soon as it is
        # answered; the time to Ready is counted when that write's watch event reaches the handlers.
        eventually(lambda: sample(process.metrics(), "fastapi_operator_apps", ready="True") == 1
                   and sample(process.metrics(), "controller_runtime_reconcile_errors_total") >= 1
                   and sample(process.metrics(), "fastapi_operator_spec_change_to_ready_seconds_count") >= 1,
                   message="one app Ready, the broken one's errors counted, the time to Ready observed")
        after = process.metrics()
        missing = [name for name in CONTROLLER_RUNTIME_NAMES if not re.search(rf"^{name}[{{ ]", after, re.M)]
        assert not missing, missing
        reconciles = sample(after, "controller_runtime_reconcile_total", controller="fastapiapp") - \
            sample(before, "controller_runtime_reconcile_total", controller="fastapiapp")
        report("metrics: reconciles to make 2 apps (one broken, retried with backoff)", f"{reconciles:.0f}")
        assert reconciles >= 2
        assert sample(after, "controller_runtime_reconcile_total", result="error") >= 1
        assert sample(after, "fastapi_operator_apps", ready="False") == 1, "the broken app counted as not Ready"
        assert sample(after, "fastapi_operator_spec_change_to_ready_seconds_count") >= 1
        assert sample(after, "rest_client_requests_total", method="PATCH") > sample(before, "rest_client_requests_total",
                                                                                    method="PATCH")
        assert sample(after, "fastapi_operator_cache_objects", kind="fastapiapps") == 2
        assert sample(after, "controller_runtime_max_concurrent_reconciles") == 4
    finally:
        process.stop()


def test_a_gateways_status_rewritten_every_second_for_a_minute_queues_no_app(cluster, namespace, operator_paused, tmp_path,
                                                                      report):
    apply_gateway(cluster, gateway(namespace))
    apps = [gateway_app("routed", namespace, listeners="Gateway")] + [
        app_manifest(f"ingress-{i}", namespace, resources=SMALL_RESOURCES, ingress={"hosts": [f"i{i}.example.com"]},
                     tls={"enabled": False}) for i in range(5)]
    process = own_operator(cluster, namespace, tmp_path, "gateway")
    try:
        cluster.apply(*apps)
        eventually(lambda: all(condition(app, "Reconciled").get("status") == "True"
                               and condition(app, "Available").get("status") == "True"
                               for app in cluster.kube.list(FASTAPIAPP, namespace)), timeout=60,
                   message="every app reconciled and Available")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        before = sample(process.metrics(), "controller_runtime_reconcile_total")
        writes_before = process.writes()
        for count in range(60):  # what a Gateway controller does as routes attach: attachedRoutes moves
            write_status(cluster, GATEWAY, namespace, "shared", {"listeners": [
                {"name": "web", "attachedRoutes": count, "supportedKinds": [], "conditions": []}]})
            time.sleep(1)
        churned = sample(process.metrics(), "controller_runtime_reconcile_total") - before
        writes = process.writes() - writes_before
        report("scale: 60 s of a Gateway's status rewritten every second (6 apps, 1 routed through it)",
               f"{churned:.0f} reconciles, {writes:.0f} mutating requests")
        assert churned == 0, f"{churned:.0f} reconciles for status changes no app reads:\n{process.log_tail(30)}"
        assert writes == 0, f"{writes:.0f} mutating requests"

        # Not blind: a new listener is what the routed app reads, so it (and only it) is queued; the
        # listener serves none of its hosts, so the reconcile writes nothing that would queue it again.
        spec = gateway(namespace)
        spec["spec"]["listeners"].append({"name": "other", "protocol": "HTTPS", "port": 443,
                                          "hostname": "other.example.org",
                                          "tls": {"mode": "Terminate", "certificateRefs": [{"name": "other"}]}})
        apply_gateway(cluster, spec)
        eventually(lambda: sample(process.metrics(), "controller_runtime_reconcile_total") - before >= 1,
                   message="the routed app reconciled")
        time.sleep(2)
        moved = sample(process.metrics(), "controller_runtime_reconcile_total") - before
        assert moved == 1, f"{moved:.0f} reconciles for a listener only one app routes through"
    finally:
        process.stop()
