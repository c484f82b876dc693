"""spec.metrics: a PodMonitor on the app's pods, a container port of its own when asked, and
Prometheus's namespace admitted to that port alone."""

from __future__ import annotations

import pytest

from fastapi_operator.errors import InvalidSpec
from fastapi_operator.settings import Settings
from tests.unit.conftest import by_kind, one

INGRESS = {"hosts": ["hello.example.com"], "className": "nginx"}
MONITORED = Settings(_env_file=None, acme_email=None, ingress_class="nginx", monitoring_namespace="monitoring")


def test_no_metrics_no_pod_monitor_and_one_container_port(render):
    rendered = render(ingress=INGRESS, tls={"enabled": False})
    assert not by_kind(rendered, "PodMonitor")
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert len(one(rendered, "NetworkPolicy")["spec"]["ingress"]) == 1


def test_metrics_on_the_apps_port_scrape_http_and_admit_prometheus_there(render):
    rendered = render(settings_=MONITORED, ingress=INGRESS, tls={"enabled": False}, metrics={})
    monitor = one(rendered, "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"]["matchLabels"] == one(rendered, "Deployment")["spec"]["selector"]["matchLabels"]
    rules = one(rendered, "NetworkPolicy")["spec"]["ingress"]
    assert rules[1] == {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                        "ports": [{"port": "http", "protocol": "TCP"}]}


def test_metrics_on_a_port_of_their_own_get_a_named_container_port_and_only_it_is_admitted(render):
    rendered = render(settings_=MONITORED, ingress=INGRESS, tls={"enabled": False},
                      metrics={"port": 9100, "path": "/internal/metrics", "interval": "15s"})
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert one(rendered, "PodMonitor")["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/internal/metrics", "interval": "15s"}]
    rules = one(rendered, "NetworkPolicy")["spec"]["ingress"]
    assert rules[0]["ports"] == [{"port": "http", "protocol": "TCP"}]  # the proxy: the app's port only
    assert rules[1]["ports"] == [{"port": "metrics", "protocol": "TCP"}]  # Prometheus: the metrics port only


def test_metrics_behind_a_network_policy_need_to_know_where_prometheus_runs(render):
    with pytest.raises(InvalidSpec, match="monitoring_namespace"):
        render(ingress=INGRESS, tls={"enabled": False}, metrics={})
    # Without an ingress there is no NetworkPolicy, and nothing to admit.
    assert one(render(metrics={}), "PodMonitor")
