"""Prometheus, from its Go module (cmd/prometheus; the web UI's assets are not built in, the HTTP API
the tests query is), scraping the operator's metrics Service the chart makes, through Kubernetes
service discovery, as a platform team's Prometheus would."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.build import go_install
from tests.e2e.components import Component


def build(out: Path, version: str) -> None:
    go_install(out, [f"github.com/prometheus/prometheus/cmd/prometheus@{version}"])


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="prometheus", version="v0.316.0", namespace="monitoring", ready=("deployment/prometheus",),
    build=build, binaries={"PROMETHEUS_IMAGE": "prometheus"},
)
