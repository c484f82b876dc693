"""Prometheus, from its Go module (cmd/prometheus; the web UI's assets are not built in, the HTTP API
the tests query is), scraping the operator's metrics Service the chart makes, through Kubernetes
service discovery, as a platform team's Prometheus would. promtool, from the same module, checks
and tests the chart's alerts."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.build import go_install
from tests.e2e.components import Component


def build(out: Path, version: str) -> None:
    # promtool too: the tests check and unit-test the chart's alerting rules with it.
    go_install(out, [f"github.com/prometheus/prometheus/cmd/{command}@{version}" for command in ("prometheus", "promtool")])


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="prometheus", version="v0.316.0", namespace="monitoring", ready=("deployment/prometheus",),
    build=build, binaries={"PROMETHEUS_IMAGE": "prometheus"},
)
