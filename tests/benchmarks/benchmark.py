"""fastapi-operator's performance, as numbers: `make bench`.

Not a test: nothing here passes or fails on time. It prints what the operator costs, on the
project's own control plane (or FASTAPI_OPERATOR_TEST_KUBECONFIG's cluster):

- render: time to render one full app (pure Python, no cluster);
- startup: operator start to its liveness endpoint answering;
- convergence: N apps applied at once until all are Available;
- no-op reconcile: latency of one reconcile with nothing to do, and its requests;
- steady state: mutating requests and reads per resync, from the API server's metrics;
- drift: a hand-edited Deployment until it is put back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from fastapi_operator.api import FastAPIApp
from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP
from fastapi_operator.reconcile import Reconciler
from fastapi_operator.render import render_app
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from tests.harness import (
    MUTATING_VERBS, Cluster, OperatorProcess, condition, eventually, existing_cluster, own_control_plane,
    request_counts,
)
from tests.manifests import app_manifest, full_manifest

RESYNC_SECONDS = 10


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def summary(samples: list[float], unit: float = 1e3, suffix: str = "ms") -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(samples) * unit:.2f} {suffix}, p95 {p95 * unit:.2f} {suffix} (n={len(samples)})"


def bench_render() -> str:
    app = FastAPIApp.model_validate({**full_manifest(), "metadata": {"name": "hello", "namespace": "shop", "uid": "u"}})
    settings = Settings()
    return summary(timed(lambda: render_app(app, settings, CONVENTIONAL_CLASSES), 2000), 1e6, "µs")


def counters(cluster: Cluster, verbs: set[str]) -> float:
    return sum(request_counts(cluster.metrics(), verbs).values())


def run(cluster: Cluster, apps: int, work: Path) -> list[tuple[str, str]]:
    results = [("render one full app", bench_render())]
    operator = OperatorProcess(cluster, work / "operator.log", RESYNC_SECONDS)
    startups = []
    for _ in range(3):
        operator.start()
        startups.append(operator.startup_seconds or 0)
        operator.stop()
    results.append(("operator start to liveness", summary(startups, 1, "s")))

    namespace = f"bench-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    operator.start()
    try:
        started = time.monotonic()
        cluster.apply(*[app_manifest(f"app-{i:03d}", namespace) for i in range(apps)])
        eventually(lambda: sum(condition(a, "Available").get("status") == "True"
                               for a in cluster.kube.list(FASTAPIAPP, namespace)) == apps,
                   timeout=600, interval=0.5, message=f"{apps} apps Available")
        elapsed = time.monotonic() - started
        results.append((f"{apps} apps applied at once until all Available",
                        f"{elapsed:.1f} s ({apps / elapsed:.1f} apps/s)"))

        time.sleep(2 * RESYNC_SECONDS)  # settle
        writes_before, reads_before = counters(cluster, MUTATING_VERBS), counters(cluster, {"GET"})
        window = 3 * RESYNC_SECONDS
        time.sleep(window)
        writes = counters(cluster, MUTATING_VERBS) - writes_before
        reads = counters(cluster, {"GET"}) - reads_before
        total_apps = len(cluster.kube.list(FASTAPIAPP))
        results.append((f"steady state, {window} s with a resync every {RESYNC_SECONDS} s",
                        f"{writes:.0f} mutating requests; {reads:.0f} GETs = "
                        f"{reads / max(total_apps * window / RESYNC_SECONDS, 1):.1f} per app per resync"))

        reconciler = Reconciler(cluster.kube, Settings())
        reads_before = counters(cluster, {"GET"})
        samples = timed(lambda: reconciler.reconcile(namespace, "app-000"), 50)
        per_reconcile = (counters(cluster, {"GET"}) - reads_before) / len(samples)
        results.append(("no-op reconcile (in-process)", f"{summary(samples)}; {per_reconcile:.1f} GETs each"))

        repairs = []
        for _ in range(10):
            cluster.kubectl("scale", "deployment/app-001", "-n", namespace, "--replicas=4")
            started = time.monotonic()
            eventually(lambda: cluster.get(DEPLOYMENT, namespace, "app-001")["spec"]["replicas"] == 1, timeout=30,
                       interval=0.02)
            repairs.append(time.monotonic() - started)
        results.append(("hand-edited Deployment put back", summary(repairs)))
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=100, help="apps for the convergence and steady-state runs")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        existing = os.environ.get("FASTAPI_OPERATOR_TEST_KUBECONFIG")
        if existing:
            cluster = existing_cluster(existing)
        else:
            cluster = stack.enter_context(own_control_plane(work / "cluster"))
        results = run(cluster, args.apps, work)
    width = max(len(name) for name, _ in results)
    print("\nfastapi-operator benchmark")
    for name, value in results:
        print(f"  {name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
