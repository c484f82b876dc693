"""spec.metrics against the real API server: the PodMonitor (its CRD generated from the Prometheus
Operator's API), the container port and the NetworkPolicy rule each added, changed and removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fastapi_operator.kinds import DEPLOYMENT, NETWORK_POLICY, POD_MONITOR
from tests.harness import condition, eventually
from tests.manifests import SMALL_RESOURCES, app_manifest

REPO = Path(__file__).resolve().parents[2]
INGRESS = {"hosts": ["metrics.example.com"], "className": "nginx"}
CRD = "podmonitors.monitoring.coreos.com"


@pytest.fixture(scope="module")
def pod_monitor_crd(cluster):
    """The PodMonitor CRD, from the control plane's build (which generates it), on clusters that lack
    it (the kind tier runs this suite too)."""
    if cluster.kubectl("get", "crd", "podmonitors.monitoring.coreos.com", check=False).returncode != 0:
        build = subprocess.run(["bash", str(REPO / "tests" / "controlplane" / "build.sh")], capture_output=True,
                               text=True, check=True).stdout.strip().splitlines()[-1]
        cluster.kubectl("apply", "--server-side", "-f",
                        str(Path(build) / "manifests" / "crds" / "monitoring.coreos.com_podmonitors.yaml"))
        wait_established(cluster, "podmonitors.monitoring.coreos.com")
    return True


def wait_established(cluster, crd: str) -> None:
    """Until the CRD serves. Not `kubectl wait`: on a CRD whose status the API server has not
    written yet it fails at once (".status.conditions accessor error"), which made this flaky."""
    eventually(lambda: any(c["type"] == "Established" and c["status"] == "True" for c in json.loads(
        cluster.kubectl("get", "crd", crd, "-o", "json").stdout).get("status", {}).get("conditions") or []),
               timeout=60, message=f"{crd} Established")


def reconciled(cluster, namespace) -> bool:
    return condition(cluster.app(namespace, "scraped"), "Reconciled").get("status") == "True" and \
        cluster.app(namespace, "scraped")["status"].get("observedGeneration") == \
        cluster.app(namespace, "scraped")["metadata"]["generation"]


def ports(cluster, namespace) -> list[dict]:
    return cluster.get(DEPLOYMENT, namespace, "scraped")["spec"]["template"]["spec"]["containers"][0]["ports"]


def admitted(cluster, namespace) -> list[tuple[str, object]]:
    rules = cluster.get(NETWORK_POLICY, namespace, "scraped")["spec"]["ingress"]
    return [(rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], rule["ports"][0]["port"])
            for rule in rules]


def test_metrics_added_changed_and_removed_reach_every_child(cluster, namespace, operator, pod_monitor_crd):
    def apply(**metrics):
        spec = {"resources": SMALL_RESOURCES, "ingress": INGRESS, "tls": {"enabled": False}}
        cluster.apply(app_manifest("scraped", namespace, **spec, **metrics))

    apply()
    eventually(lambda: reconciled(cluster, namespace), message="reconciled without metrics")
    assert cluster.get(POD_MONITOR, namespace, "scraped") is None
    assert admitted(cluster, namespace) == [("ingress-nginx", "http")]

    apply(metrics={})
    eventually(lambda: cluster.get(POD_MONITOR, namespace, "scraped") is not None and reconciled(cluster, namespace),
               message="the PodMonitor made")
    endpoints = cluster.get(POD_MONITOR, namespace, "scraped")["spec"]["podMetricsEndpoints"]
    assert endpoints == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert admitted(cluster, namespace) == [("ingress-nginx", "http"), ("monitoring", "http")]

    apply(metrics={"port": 9100, "path": "/internal/metrics", "interval": "15s"})
    eventually(lambda: cluster.get(POD_MONITOR, namespace, "scraped")["spec"]["podMetricsEndpoints"][0]["port"]
               == "metrics" and reconciled(cluster, namespace), message="the PodMonitor changed")
    assert cluster.get(POD_MONITOR, namespace, "scraped")["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/internal/metrics", "interval": "15s"}]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in ports(cluster, namespace)
    eventually(lambda: admitted(cluster, namespace) == [("ingress-nginx", "http"), ("monitoring", "metrics")],
               message="Prometheus admitted to the metrics port only")

    apply()
    eventually(lambda: cluster.get(POD_MONITOR, namespace, "scraped") is None and reconciled(cluster, namespace),
               timeout=60, message="the PodMonitor deleted")
    eventually(lambda: [p["name"] for p in ports(cluster, namespace)] == ["http"]
               and admitted(cluster, namespace) == [("ingress-nginx", "http")], timeout=60,
               message="the metrics port and its rule removed")


def test_metrics_behind_a_network_policy_without_prometheuss_namespace_say_what_to_set(cluster, namespace,
                                                                                       operator_paused, tmp_path,
                                                                                       pod_monitor_crd):
    from tests.harness import OperatorProcess
    process = OperatorProcess(cluster, tmp_path / "operator.log", settings={"ingress_class": "nginx",
                                                                            "namespaces": namespace})
    process.start()
    try:
        cluster.apply(app_manifest("scraped", namespace, resources=SMALL_RESOURCES, ingress=INGRESS,
                                   tls={"enabled": False}, metrics={}))
        eventually(lambda: condition(cluster.app(namespace, "scraped"), "Reconciled").get("reason") == "InvalidSpec",
                   message="InvalidSpec")
        message = condition(cluster.app(namespace, "scraped"), "Reconciled")["message"]
        assert "monitoring_namespace" in message and "spec.metrics" in message
        assert cluster.get(DEPLOYMENT, namespace, "scraped") is None, "nothing is made for a refused spec"
    finally:
        process.stop()


def test_metrics_without_the_monitoring_crds_say_what_to_install(cluster, namespace, operator_paused, tmp_path,
                                                                pod_monitor_crd):
    from tests.harness import OperatorProcess
    saved = json.loads(cluster.kubectl("get", "crd", CRD, "-o", "json").stdout)
    saved["metadata"] = {"name": CRD}
    saved.pop("status", None)
    cluster.kubectl("delete", "crd", CRD, "--wait=true", timeout=120)
    process = OperatorProcess(cluster, tmp_path / "operator.log", settings={"ingress_class": "nginx",
                                                                            "monitoring_namespace": "monitoring",
                                                                            "namespaces": namespace})
    process.start()
    try:
        cluster.apply(app_manifest("scraped", namespace, resources=SMALL_RESOURCES, metrics={}))
        eventually(lambda: condition(cluster.app(namespace, "scraped"), "Reconciled").get("reason") == "MissingAPI",
                   timeout=60, message="MissingAPI")
        message = condition(cluster.app(namespace, "scraped"), "Reconciled")["message"]
        assert "PodMonitor" in message and "Prometheus Operator" in message, message
        assert condition(cluster.app(namespace, "scraped"), "Ready").get("status") == "False"
    finally:
        process.stop()
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(saved))
        wait_established(cluster, CRD)
