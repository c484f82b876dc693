"""A real Prometheus (tests/e2e/components/prometheus) scrapes the operator's metrics through the
Service the chart makes: both replicas are up, exactly one says it leads, and the reconciles of an
app applied here show up in controller-runtime's counter. It scrapes an app's own metrics too, on
the port spec.metrics names, through the NetworkPolicy rule that admits its namespace there alone;
and the chart's alerts load and fire as their unit tests say."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import uuid

import pytest

from tests.e2e import components, rig
from tests.e2e.test_user_path import kubectl
from tests.e2e.traffic import SteadyTraffic
from tests.harness import eventually


def query(cluster, promql: str) -> list[dict]:
    path = ("/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query="
            + urllib.parse.quote(promql))
    answer = json.loads(kubectl(cluster, "get", "--raw", path))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def value(cluster, promql: str) -> float | None:
    result = query(cluster, promql)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def namespace(kind_cluster):
    name = f"e2e-metrics-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", name)
    return name


def test_prometheus_scrapes_both_replicas_and_sees_one_leader_and_the_reconciles(kind_cluster, namespace, report):
    eventually(lambda: value(kind_cluster, 'count(up{job="fastapi-operator"} == 1)') == 2, timeout=90, interval=2,
               message="both operator replicas scraped")
    assert value(kind_cluster, 'sum(leader_election_master_status{name="fastapi-operator"})') == 1, \
        "exactly one replica leads"
    before = value(kind_cluster, 'sum(controller_runtime_reconcile_total{controller="fastapiapp"})') or 0
    app = {"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
           "metadata": {"name": "counted", "namespace": namespace},
           "spec": {"image": rig.HELLO_IMAGE, "healthPath": "/health",
                    "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}}}}
    kubectl(kind_cluster, "apply", "-f", "-", stdin=json.dumps(app))
    eventually(lambda: (value(kind_cluster, 'sum(controller_runtime_reconcile_total{controller="fastapiapp"})')
                        or 0) > before, timeout=60, interval=2, message="the app's reconciles scraped")
    ready = eventually(lambda: value(kind_cluster, 'sum(fastapi_operator_apps{ready="True"})'), timeout=180,
                       interval=2, message="a Ready app counted")
    latency = value(kind_cluster, 'histogram_quantile(0.99, sum by (le) '
                                  '(rate(controller_runtime_reconcile_time_seconds_bucket[5m])))')
    report("kind: Prometheus scraping the operator", f"2 replicas up, 1 leader, {ready:.0f} apps Ready, "
           f"reconcile p99 {latency if latency is None else f'{latency * 1000:.0f} ms'}")


METRICS_HOST = f"metrics.{rig.TEST_DOMAIN}"


def test_an_apps_own_request_counter_rises_with_traffic_through_traefik(kind_cluster, namespace, report):
    app = {"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
           "metadata": {"name": "scraped", "namespace": namespace},
           "spec": {"image": rig.HELLO_IMAGE, "replicas": 2, "healthPath": "/health",
                    "env": [{"name": "METRICS_PORT", "value": "9100"}],
                    "metrics": {"port": 9100, "interval": "5s"},
                    "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
                    "ingress": {"hosts": [METRICS_HOST], "className": "traefik"}, "tls": {"enabled": False}}}
    kubectl(kind_cluster, "apply", "-f", "-", stdin=json.dumps(app))
    eventually(lambda: value(kind_cluster, f'count(up{{job="fastapi-apps",namespace="{namespace}"}} == 1)') == 2,
               timeout=180, interval=2, message="both pods' metrics port scraped through the NetworkPolicy")
    # A route no probe asks for: only the traffic below moves its counter.
    served = f'sum(hello_requests_total{{namespace="{namespace}",route="/items/",status="200"}})'
    before = value(kind_cluster, served) or 0
    with SteadyTraffic(METRICS_HOST, "/items/", clients=2, interval=0.1) as traffic:
        eventually(lambda: (value(kind_cluster, served) or 0) >= before + 50, timeout=60, interval=2,
                   message="the app's request counter rose with the traffic")
    after = value(kind_cluster, served)
    report("kind: an app's own metrics through its PodMonitor's port",
           f"2 pods up; hello_requests_total rose by {after - before:.0f} while {len(traffic.statuses)} requests "
           f"went through Traefik ({traffic.failed} failed)")
    assert traffic.failed == 0, traffic.summary()


def test_the_charts_alerts_load_and_fire_as_their_unit_tests_say(tmp_path, report):
    """promtool, from the Prometheus module the rig builds: the rules parse (check rules) and the
    not-Ready and no-leader alerts fire when, and only when, they should (test rules)."""
    (prometheus,) = [c for c in components.load() if c.name == "prometheus"]
    promtool = prometheus.built() / "promtool"
    shutil.copy(rig.REPO / "charts" / "fastapi-operator" / "files" / "alerts.yaml", tmp_path / "alerts.yaml")
    shutil.copy(prometheus.folder / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    checked = subprocess.run([str(promtool), "check", "rules", "alerts.yaml"], cwd=tmp_path, capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([str(promtool), "test", "rules", "alerts_test.yaml"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    report("kind: the chart's alerts", checked.stdout.strip().splitlines()[-1] + "; promtool test rules: SUCCESS")
