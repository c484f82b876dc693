"""The Grafana dashboard asks only for metrics the operator (or the example app) serves, and every
series it would need a label of carries that label."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi_operator.metrics import REGISTRY, StoredState

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fastapi-operator.json"
OURS = ("controller_runtime_", "workqueue_", "rest_client_", "leader_election_", "fastapi_operator_")
EXAMPLE_APP = {"hello_requests_total"}


def served_names() -> set[str]:
    """The names /metrics prints: a gauge by its name, a counter with _total, a histogram as
    _bucket, _count and _sum; and the families read at scrape time from the cache."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = {f"{family.name}{suffix}" for family in REGISTRY.collect() for suffix in suffixes[family.type]}
    return names | {family.name for family in StoredState(lambda: [], lambda: {}).collect()}


def test_every_metric_the_dashboard_asks_for_is_served():
    expressions = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]
    asked = {name for expr in expressions for name in re.findall(r"\b([a-z_]+)(?=\{|\[|\))", expr)
             if name.startswith(OURS) or name in EXAMPLE_APP}
    assert asked, "the dashboard asks for nothing of ours"
    missing = sorted(asked - served_names() - EXAMPLE_APP)
    assert not missing, f"the dashboard asks for metrics the operator does not serve: {missing}"
    assert {"controller_runtime_reconcile_total", "fastapi_operator_apps", "workqueue_depth"} <= asked
