"""fastapi-operator's performance, as numbers: `make bench`.

Not a test: nothing here passes or fails on time. It prints what the operator costs, on the
project's own control plane (or FASTAPI_OPERATOR_TEST_KUBECONFIG's cluster):

- render: time to render one full app (pure Python, no cluster);
- startup: operator start to its liveness endpoint answering;
- convergence: N apps applied at once until all are Available, side by side with the peer: what a
  user would do without the operator, `kubectl apply --server-side` of the very objects
  `fastapi-operator render` makes, until every Deployment is Available; their ratio, and the
  requests and the CPU each side used (both wait on a watch, so the measuring adds no load). Two
  shapes of app: `minimal` (an image: a Deployment and a Service) and `realistic` (two replicas, an
  ingress with a path and TLS from a ClusterIssuer: an Ingress, a NetworkPolicy and a
  PodDisruptionBudget too). Beside the ratio, the floor: the peer's time plus what the operator
  cannot avoid, each app's FastAPIApp and one status write, at the peer run's own machine CPU per
  mutating request (every client's, the controllers' included), spread over the cores;
- memory: the operator's resident set size once the N apps converged, and after the steady state;
  the apps converge under the default resync period, as a user runs the operator (a resync of
  10,000 apps every 10 s would be most of the operator's CPU while they converge); the operator
  is then restarted with a resync every 10 s, for the steady state, the drift and the restart;
- no-op reconcile: latency of one reconcile with nothing to do, and its requests;
- steady state: mutating requests, and GET and LIST requests per app per resync, from the API
  server's metrics; the operator's CPU per resync;
- drift: a hand-edited Deployment until it is put back; then five at a time, edited as soon as a
  resync has queued every app (the operator's workqueue_depth), their p99;
- operator restart with every app in place: from its start until it has checked every app, and
  its writes meanwhile (none: nothing changed), its CPU and its RSS then;
- API server restart: stopped for 5 s during a burst of creates (200 by default), the time from
  its return until every app is Available (the project's own control plane only);
- failover: two replicas, the active one SIGKILLed, until the standby reconciled a new app, with
  the N apps still in the cluster.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from fastapi_operator.api import FastAPIApp
from fastapi_operator.cache import Cache, watched_sources
from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP, Kind
from fastapi_operator.reconcile import Reconciler
from fastapi_operator.render import render_app
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from tests.harness import (
    MUTATING_VERBS, SAMPLE, Cluster, OperatorProcess, condition, eventually, existing_cluster, own_control_plane,
    request_counts, sample,
)
from tests.manifests import app_manifest, full_manifest
from tests.scenarios import api_server_restart, failover

COLLECTIONS_METRIC = "fastapi_operator_shared_object_collections_total"
RESYNC_SECONDS = 10
OUTAGE_SECONDS = 5


class Results(list[tuple[str, str]]):
    """Each number printed as soon as it is measured too, so a run that fails late keeps them."""

    def append(self, result: tuple[str, str]) -> None:
        print(f"bench: {result[0]}: {result[1]}", flush=True)
        super().append(result)


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def metrics_per_reconcile(rounds: int = 20000) -> float:
    """What the operator's /metrics adds to one reconcile: the updates metrics.measured_reconcile and
    the work queue make for it (in seconds)."""
    from fastapi_operator.metrics import QUEUE, QUEUE_ADDS, QUEUE_LATENCY, WORK_DURATION, measured_reconcile

    started = time.perf_counter()
    for _ in range(rounds):
        QUEUE_ADDS.labels(QUEUE).inc()
        QUEUE_LATENCY.labels(QUEUE).observe(0.001)
        with measured_reconcile() as measured:
            measured.failed = False
        WORK_DURATION.labels(QUEUE).observe(0.001)
    return (time.perf_counter() - started) / rounds


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(samples: list[float], unit: float = 1e3, suffix: str = "ms") -> str:
    p95 = percentile(samples, 0.95)
    return f"median {statistics.median(samples) * unit:.2f} {suffix}, p95 {p95 * unit:.2f} {suffix} (n={len(samples)})"


def bench_render() -> str:
    app = FastAPIApp.model_validate({**full_manifest(), "metadata": {"name": "hello", "namespace": "shop", "uid": "u"}})
    settings = Settings()
    return summary(timed(lambda: render_app(app, settings, CONVENTIONAL_CLASSES), 2000), 1e6, "µs")


def counters(cluster: Cluster, verbs: set[str]) -> float:
    return sum(request_counts(cluster.metrics(), verbs).values())


VERB_SETS = {"writes": MUTATING_VERBS, "GETs": {"GET"}, "LISTs": {"LIST"}}


def request_totals(metrics: str) -> dict[str, float]:
    return {name: sum(request_counts(metrics, verbs).values()) for name, verbs in VERB_SETS.items()}


def requests_since(metrics: str, before: dict[str, float]) -> str:
    """Requests on the kinds the operator reads and writes (Events not counted), from apiserver_request_total."""
    now = request_totals(metrics)
    return ", ".join(f"{now[name] - before[name]:.0f} {name}" for name in VERB_SETS)


def operator_requests(operator: OperatorProcess) -> tuple[float, float, float, float]:
    """The operator's own GETs that were reads and lists, watches made again, writes (Events
    included) and reconciles so far. Its rest_client_requests_total, as client-go's, counts a watch
    among its GETs when the watch ends (every 4 to 4.5 minutes per watched kind): over a long
    converge those are most of its GETs, and no read."""
    text = operator.metrics()
    watches = sample(text, "fastapi_operator_watch_requests_total")
    return (sample(text, "rest_client_requests_total", method="GET") - watches, watches, operator.writes(text),
            sample(text, "controller_runtime_reconcile_total"))


def own_requests_since(operator: OperatorProcess, before: tuple[float, float, float, float]) -> str:
    """The operator's share of the requests counted by `requests_since`, whose count is every
    client's, and its reconciles: the CPU per app follows how many reconciles each app took."""
    reads, watches, writes, reconciles = (now - then for now, then in zip(operator_requests(operator), before))
    return (f"the operator's own {reads:.0f} reads and lists, {watches:.0f} watches made again, {writes:.0f} "
            f"writes; {reconciles:.0f} reconciles")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time used so far: by one process, or by the whole machine (all cores' busy time)."""
    ticks = os.sysconf("SC_CLK_TCK")
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(busy[3]) + int(busy[4])  # idle, iowait
    return (sum(map(int, busy)) - idle) / ticks


def cpu_use(machine_before: float, elapsed: float, operator: tuple[int, float] | None = None) -> str:
    """Where the CPU went during a run: is the machine saturated, and how much was the operator's?"""
    cores = os.cpu_count() or 1
    machine = cpu_seconds() - machine_before
    used = f"machine CPU {machine:.0f} s of {elapsed * cores:.0f} s ({cores} cores)"
    if operator is not None:
        pid, before = operator
        used += f", the operator's {cpu_seconds(pid) - before:.0f} s"
    return used


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def is_available(obj: dict) -> bool:
    """A Deployment's or a FastAPIApp's Available condition (the same shape on both)."""
    return condition(obj, "Available").get("status") == "True"


def is_at_rest(deployment: dict) -> bool:
    """A Deployment whose controller has seen its spec and has every pod it asks for ready."""
    wanted, status = deployment["spec"].get("replicas", 1), deployment.get("status") or {}
    return (status.get("observedGeneration") == deployment["metadata"].get("generation")
            and status.get("replicas", 0) == status.get("updatedReplicas", 0) == status.get("readyReplicas", 0)
            == wanted)


def wait_until_all(cluster: Cluster, kind: Kind, namespace: str, count: int, timeout: float = 600,
                   done: Callable[[dict], bool] = is_available, said: str = "Available") -> None:
    """Until `count` objects of `kind` are `done` (Available), following one watch: polling a list
    of 1,000 objects every half second would cost the API server more than some of what is
    measured."""
    deadline = time.monotonic() + timeout
    listed = cluster.kube.request("GET", kind.path(namespace))
    available = {item["metadata"]["name"] for item in listed["items"] if done(item)}
    version = listed["metadata"]["resourceVersion"]
    while len(available) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(available)} of {count} {kind.plural} {said} after {timeout:.0f} s"
        for event in cluster.kube.watch(kind, namespace, None, version, int(min(left, 60)) + 1, min(left, 60) + 5):
            obj = event["object"]
            assert event["type"] != "ERROR", f"the watch of {kind.plural} ended: {obj.get('message')}"
            version = obj["metadata"]["resourceVersion"]
            if event["type"] == "BOOKMARK":
                continue
            if event["type"] != "DELETED" and done(obj):
                available.add(obj["metadata"]["name"])
            else:
                available.discard(obj["metadata"]["name"])
            if len(available) >= count:
                return


def fresh_namespace(cluster: Cluster, prefix: str) -> str:
    namespace = f"{prefix}-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    return namespace


BENCH_ISSUER = "bench-issuer"
SHAPES = ("minimal", "realistic")


def shaped_apps(shape: str, apps: int, namespace: str) -> list[dict]:
    """`minimal`: an image. `realistic`: what most apps in production ask for: two replicas, a
    host with a path prefix, TLS from the platform's ClusterIssuer."""
    if shape == "minimal":
        return [app_manifest(f"app-{i:03d}", namespace) for i in range(apps)]
    return [app_manifest(f"app-{i:03d}", namespace, replicas=2, tls={"clusterIssuer": BENCH_ISSUER},
                         ingress={"hosts": [f"app-{i:03d}.{namespace}.bench.example"], "path": "/api",
                                  "className": "nginx"}) for i in range(apps)]


def prepare_realistic(cluster: Cluster) -> None:
    """What realistic apps name: the IngressClass (as the integration suite sets it up) and a
    ClusterIssuer (an object only: no cert-manager runs on the control plane, and Available needs
    no certificate)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                    str(Path(__file__).parents[1] / "integration" / "ingress-classes.yaml"))
    cluster.apply({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": BENCH_ISSUER},
                   "spec": {"selfSigned": {}}})


def mutating_requests(metrics: str) -> float:
    """Every mutating request the API server served, whoever sent it and whatever it wrote."""
    total = 0.0
    for line in metrics.splitlines():
        match = SAMPLE.match(line)
        if match and re.search(r'verb="(POST|PUT|PATCH|APPLY|DELETE|DELETECOLLECTION)"', match["labels"]):
            total += float(match["value"])
    return total


def writes_since(metrics: str, before: Counter) -> Counter:
    """The writes on the operator's kinds in `metrics` made since `before` (both request_counts)."""
    written = request_counts(metrics)
    written.subtract(before)
    return written


def written_since(metrics: str, before: Counter) -> str:
    """Which writes on the operator's kinds were made since `before` (request_counts), when there
    are any: a status following the pods of a cluster still settling (at 10,000 apps the controllers
    run minutes behind) is not a write nothing asked for; a child's or an Event's would be."""
    return ", ".join(f"{verb} {resource}{'/' + sub if sub else ''} {count:.0f}"
                     for (verb, resource, sub), count in writes_since(metrics, before).most_common()
                     if count > 0)


def status_writes(written: Counter) -> float:
    """The apps' status writes of a writes_since: only the operator writes them, so every client's
    count is the operator's."""
    return sum(count for (_, resource, sub), count in written.items() if (resource, sub) == ("fastapiapps", "status"))


def settle(cluster: Cluster, namespace: str, apps: int) -> tuple[str, str]:
    """Until every app's pods are ready, after the apps are Available: at 10,000 apps the
    controllers bring up second replicas minutes behind, and each app's status follows them (a
    write asked for). The steady state and the restart are measured on a cluster at rest."""
    before, started = request_counts(cluster.metrics()), time.monotonic()
    bound = max(300, apps * 0.1)
    try:
        wait_until_all(cluster, DEPLOYMENT, namespace, apps, timeout=bound, done=is_at_rest,
                       said="with every pod ready")
        took = f"{time.monotonic() - started:.1f} s"
    except AssertionError as failure:
        took = f"not within {bound:.0f} s ({failure})"
    written = writes_since(cluster.metrics(), before)
    return ("every app's pods ready, after all apps were Available",
            f"{took}; meanwhile {status_writes(written):.0f} status writes, "
            f"{sum(written.values()) - status_writes(written):.0f} other writes")


def steady_state(cluster: Cluster, operator: OperatorProcess) -> tuple[str, str]:
    """Three resync periods of nothing to do: every client's requests on the operator's kinds, and
    the operator's CPU per resync."""
    assert operator.process is not None
    metrics = cluster.metrics()  # one reading for every count, before and after
    before, written_before = request_totals(metrics), request_counts(metrics)
    cpu_before = cpu_seconds(operator.process.pid)
    window = 3 * RESYNC_SECONDS
    time.sleep(window)
    cpu = cpu_seconds(operator.process.pid) - cpu_before
    metrics = cluster.metrics()
    since = {name: total - before[name] for name, total in request_totals(metrics).items()}
    writes, gets, lists = since["writes"], since["GETs"], since["LISTs"]
    which = written_since(metrics, written_before)
    apps = max(len(cluster.kube.list(FASTAPIAPP)), 1)
    resyncs = window / RESYNC_SECONDS
    return (f"steady state, {window} s with a resync every {RESYNC_SECONDS} s",
            f"{writes:.0f} mutating requests{f' ({which})' if which else ''}; per app per resync "
            f"{gets / apps / resyncs:.1f} GETs and "
            f"{lists / apps / resyncs:.1f} LISTs; operator CPU per resync {cpu / resyncs * 1e3:.0f} ms "
            f"({cpu / resyncs / apps * 1e6:.0f} µs per app)")


def drift_during_resync(cluster: Cluster, operator: OperatorProcess, namespace: str, apps: int,
                        rounds: int = 6, per_round: int = 5) -> tuple[str, str]:
    """Hand edits of `per_round` Deployments made as soon as a resync has queued the apps (seen in
    the operator's workqueue_depth), each timed until put back: a change must not wait behind a
    routine check of every app."""
    names = [f"app-{i:03d}" for i in range(2, 2 + per_round)]
    wanted = {name: cluster.get(DEPLOYMENT, namespace, name)["spec"]["replicas"] for name in names}
    repairs: list[float] = []
    during = 0
    for _ in range(rounds):
        try:
            eventually(lambda: sample(operator.metrics(), "workqueue_depth") >= max(1, apps // 10),
                       timeout=2 * RESYNC_SECONDS, interval=0.01)
            during += per_round
        except AssertionError:
            pass  # a resync of few apps can end between two looks: edited anyway, and counted apart
        edited = {}
        for name in names:
            # As someone else's edit, under a field manager of its own.
            cluster.kube.request("PATCH", DEPLOYMENT.path(namespace, name), query=[("fieldManager", "bench-hand")],
                                 body=[{"op": "replace", "path": "/spec/replicas", "value": wanted[name] + 3}],
                                 content_type="application/json-patch+json")
            edited[name] = time.monotonic()
        while edited:
            for name in list(edited):
                if cluster.get(DEPLOYMENT, namespace, name)["spec"]["replicas"] == wanted[name]:
                    repairs.append(time.monotonic() - edited.pop(name))
            assert not edited or min(edited.values()) > time.monotonic() - 60, f"not put back in 60 s: {edited}"
            time.sleep(0.005)
    return ("hand-edited Deployments put back while a resync runs",
            f"{summary(repairs)}, p99 {percentile(repairs, 0.99) * 1e3:.0f} ms, max {max(repairs) * 1e3:.0f} ms; "
            f"{during} of {len(repairs)} edits made while the resync's queue held at least {max(1, apps // 10)} apps")


def restart_with_apps(cluster: Cluster, operator: OperatorProcess) -> tuple[str, str]:
    """The operator restarted with every app in place and nothing changed: the time from its start
    until it has checked every app (reconciles counted, its queue empty), and what it wrote meanwhile
    (its own mutating requests, Events included)."""
    total = len(cluster.kube.list(FASTAPIAPP))
    operator.stop()
    written_before = request_counts(cluster.metrics())
    took = start_and_check_every_app(operator, total)
    writes = operator.writes()
    which = written_since(cluster.metrics(), written_before)
    return (f"operator restarted with {total} apps in place: start until every app checked",
            f"{took:.1f} s; {writes:.0f} writes (Events included){f' ({which})' if which else ''}; operator CPU "
            f"{cpu_seconds(operator.process.pid):.1f} s, RSS {rss_mib(operator.process.pid):.0f} MiB")


def start_and_check_every_app(operator: OperatorProcess, total: int) -> float:
    """The operator started: seconds from its process's start until it has checked every app
    (reconciles counted, its queue empty)."""
    operator.start()
    assert operator.process is not None and operator.startup_seconds is not None
    started = time.monotonic() - operator.startup_seconds

    def checked() -> bool:
        try:
            metrics = operator.metrics()
        except OSError:  # its metrics endpoint not open yet
            return False
        return (sample(metrics, "controller_runtime_reconcile_total") >= total
                and sample(metrics, "workqueue_depth") == 0)

    eventually(checked, timeout=max(120, total * 0.05), interval=0.1, message=f"all {total} apps checked")
    return time.monotonic() - started


def deletion_with_operator(cluster: Cluster, operator: OperatorProcess, namespace: str, apps: int) -> tuple[str, str]:
    """The apps' namespace deleted while the operator runs: each app's deletion, and each of its
    children's, reaches the operator, and what the apps leave (their HostClaims) is collected."""
    start_and_check_every_app(operator, apps)
    assert operator.process is not None
    cpu_before = cpu_seconds(operator.process.pid)
    looks_before = sample(operator.metrics(), COLLECTIONS_METRIC)
    started = time.monotonic()
    delete_namespace(cluster, namespace, apps)
    took = time.monotonic() - started
    eventually(lambda: sample(operator.metrics(), "workqueue_depth") == 0, timeout=120, message="the queue drained")
    time.sleep(2)  # past the collection's second
    cpu = cpu_seconds(operator.process.pid) - cpu_before
    looks = sample(operator.metrics(), COLLECTIONS_METRIC) - looks_before
    return (f"{apps} apps' namespace deleted, the operator running",
            f"gone after {took:.1f} s; operator CPU {cpu:.1f} s ({cpu / apps * 1e3:.1f} ms per app); "
            f"{looks:.0f} looks for unused shared objects")


def delete_namespace(cluster: Cluster, namespace: str, apps: int) -> None:
    """Deleted, and waited for: the namespace controller deleting thousands of Deployments with
    their pods would otherwise share the machine with the run that follows."""
    seconds = max(600, apps // 5)
    cluster.kubectl("delete", "namespace", namespace, f"--timeout={seconds}s", check=False, timeout=seconds + 60)


@dataclass
class PeerRun:
    seconds: float
    requests: str
    machine_cpu: float  # seconds, all cores
    mutating: float  # every client's

    def floor(self, apps: int) -> float:
        """The peer's time, plus each app's FastAPIApp create and one status write at this run's
        CPU per mutating request, over the machine's cores."""
        per_request = self.machine_cpu / max(self.mutating, 1)
        return self.seconds + 2 * apps * per_request / (os.cpu_count() or 1)


def run_peer(cluster: Cluster, shape: str, apps: int, work: Path) -> PeerRun:
    """kubectl apply --server-side of what `fastapi-operator render` prints for the same apps:
    its time, the requests it made, and the machine's CPU."""
    namespace = fresh_namespace(cluster, "peer")
    manifests = work / "peer.yaml"
    manifests.write_text(yaml.safe_dump_all(shaped_apps(shape, apps, namespace)))
    try:
        metrics = cluster.metrics()
        before, mutating_before = request_totals(metrics), mutating_requests(metrics)
        machine_before = cpu_seconds()
        started = time.monotonic()
        rendered = subprocess.run([str(Path(sys.executable).with_name("fastapi-operator")), "render", "-f",
                                   str(manifests)], check=True, capture_output=True, text=True).stdout
        # About 5 objects per realistic app, one request each: 50,000 at 10,000 apps.
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=rendered, timeout=max(600, apps * 0.5))
        wait_until_all(cluster, DEPLOYMENT, namespace, apps, timeout=max(600, apps * 0.5))
        elapsed = time.monotonic() - started
        metrics = cluster.metrics()
        return PeerRun(elapsed, f"{requests_since(metrics, before)}; {cpu_use(machine_before, elapsed)}",
                       cpu_seconds() - machine_before, mutating_requests(metrics) - mutating_before)
    finally:
        delete_namespace(cluster, namespace, apps)


def converge(cluster: Cluster, operator: OperatorProcess, shape: str, apps: int, peer: PeerRun,
             results: Results) -> str:
    """The operator's side of one shape: its apps applied at once until all are Available. Returns
    their namespace (the operator still running)."""
    namespace = fresh_namespace(cluster, f"bench-{shape}")
    metrics = cluster.metrics()  # one reading for both counts
    before, written_before, own_before = request_totals(metrics), request_counts(metrics), operator_requests(operator)
    assert operator.process is not None
    pid = operator.process.pid
    machine_before, operator_before = cpu_seconds(), cpu_seconds(pid)
    started = time.monotonic()
    # The same command as the peer's, so the two runs differ only in who makes the objects.
    cluster.kubectl("apply", "--server-side", "-f", "-", timeout=max(600, apps * 0.5),
                    stdin=yaml.safe_dump_all(shaped_apps(shape, apps, namespace)))
    wait_until_all(cluster, FASTAPIAPP, namespace, apps, timeout=max(600, apps * 0.5))
    elapsed = time.monotonic() - started
    operator_cpu = cpu_seconds(pid) - operator_before
    metrics = cluster.metrics()
    requests = (f"{requests_since(metrics, before)} ({own_requests_since(operator, own_before)}); "
                f"{cpu_use(machine_before, elapsed, (pid, operator_before))}")
    floor = peer.floor(apps)
    results.append((f"{apps} {shape} apps: peer (kubectl apply --server-side of the rendered objects)",
                    f"{peer.seconds:.1f} s ({apps / peer.seconds:.1f} apps/s); {peer.requests}"))
    results.append((f"{apps} {shape} apps: operator, applied at once until all Available",
                    f"{elapsed:.1f} s ({apps / elapsed:.1f} apps/s); {requests}; "
                    f"operator CPU per app {operator_cpu / apps * 1e3:.1f} ms; status writes per app "
                    f"{status_writes(writes_since(metrics, written_before)) / apps:.2f}"))
    results.append((f"{apps} {shape} apps: ratios",
                    f"operator/peer {elapsed / peer.seconds:.2f}; floor {floor:.1f} s, operator/floor "
                    f"{elapsed / floor:.2f} ({elapsed / floor - 1:+.0%})"))
    results.append((f"operator RSS with {apps} {shape} apps converged", f"{rss_mib(pid):.0f} MiB"))
    return namespace


def run(cluster: Cluster, apps: int, restart_apps: int, shapes: list[str], work: Path) -> list[tuple[str, str]]:
    results = Results()
    results.append(("render one full app", bench_render()))
    prepare_realistic(cluster)
    peers = {shape: run_peer(cluster, shape, apps, work) for shape in shapes}
    operator = OperatorProcess(cluster, work / "operator.log", Settings().resync_seconds)
    startups = []
    for _ in range(3):
        operator.start()
        startups.append(operator.startup_seconds or 0)
        operator.stop()
    results.append(("operator start to liveness", summary(startups, 1, "s")))

    namespaces: list[str] = []
    try:
        # Each shape with an operator of its own and the cluster as the peer found it: the earlier
        # shape's apps deleted, so neither its objects nor its high-water RSS count against this one.
        # The steady state, the drift and the restart are measured on the last shape's apps.
        for index, shape in enumerate(shapes):
            operator.start()
            namespaces.append(converge(cluster, operator, shape, apps, peers[shape], results))
            if index < len(shapes) - 1:
                operator.stop()
                delete_namespace(cluster, namespaces.pop(), apps)
        namespace = namespaces[-1]
        results.append(settle(cluster, namespace, apps))
        operator.stop()
        operator.resync_seconds = RESYNC_SECONDS
        start_and_check_every_app(operator, len(cluster.kube.list(FASTAPIAPP)))
        assert operator.process is not None

        time.sleep(2 * RESYNC_SECONDS)  # settle
        results.append(steady_state(cluster, operator))
        results.append(("operator RSS after the steady state", f"{rss_mib(operator.process.pid):.0f} MiB"))
        # Right after the steady state, so that nothing changed (a hand edit's pods still going
        # away would be news to report).
        results.append(restart_with_apps(cluster, operator))

        cache = Cache(cluster.kube, watched_sources(Settings()), lambda *_: None)
        cache.start()
        assert cache.wait_synced(30)
        reconciler = Reconciler(cluster.kube, Settings(), cache)
        reads_before = counters(cluster, {"GET"})
        samples = timed(lambda: reconciler.reconcile(namespace, "app-000"), 50)
        per_reconcile = (counters(cluster, {"GET"}) - reads_before) / len(samples)
        cache.stop()
        results.append(("no-op reconcile (in-process, from the cache)",
                        f"{summary(samples)}; {per_reconcile:.1f} GETs each"))
        bookkeeping = metrics_per_reconcile()
        results.append(("metrics bookkeeping per reconcile (counters, histograms, queue timings)",
                        f"{bookkeeping * 1e6:.1f} µs, {bookkeeping / statistics.median(samples):.1%} of a no-op "
                        f"reconcile"))

        repairs = []
        wanted = cluster.get(DEPLOYMENT, namespace, "app-001")["spec"]["replicas"]
        for _ in range(10):
            cluster.kubectl("scale", "deployment/app-001", "-n", namespace, f"--replicas={wanted + 3}")
            started = time.monotonic()
            eventually(lambda: cluster.get(DEPLOYMENT, namespace, "app-001")["spec"]["replicas"] == wanted, timeout=30,
                       interval=0.02)
            repairs.append(time.monotonic() - started)
        results.append(("hand-edited Deployment put back", summary(repairs)))
        results.append(drift_during_resync(cluster, operator, namespace, apps))

        restart = f"API server stopped {OUTAGE_SECONDS} s mid-burst of {restart_apps} creates, all Available after"
        if cluster.control_plane_state is not None:
            # Bounded, and the run goes on past it: the controllers' pods for the burst come up
            # behind every other app's, minutes late at 10,000.
            bound = max(240, apps * 0.05)
            try:
                seconds = api_server_restart(cluster, fresh_namespace(cluster, "restart"), operator, restart_apps,
                                             OUTAGE_SECONDS, timeout=bound)
                results.append((restart, f"{seconds:.1f} s from its return"))
            except AssertionError as failure:
                results.append((restart, f"not within {bound:.0f} s of its return: {failure}"))
        else:
            results.append((restart, "not measured: only the project's own control plane can be stopped"))
        operator.stop()
        # With the apps still there, as a failover in a full cluster would find them.
        observed = failover(cluster, fresh_namespace(cluster, "failover"), work, {}, timeout=120)
        results.append((f"failover with {apps} apps: active replica SIGKILLed until the standby reconciled a new app",
                        f"{observed.seconds:.1f} s"))
        # With the operator's own resync period: one every 10 s (the steady state's) would add a
        # resync of every app each 10 s of the deletion to what the deletion costs.
        operator.resync_seconds = Settings().resync_seconds
        results.append(deletion_with_operator(cluster, operator, namespaces.pop(), apps))
    finally:
        operator.stop()
        for namespace in namespaces:
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=100, help="apps for the convergence and steady-state runs")
    parser.add_argument("--restart-apps", type=int, default=200, help="apps in the burst the API server restarts in")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"app shapes to converge, comma-separated, of {', '.join(SHAPES)} (the steady state, "
                             "drift and restart numbers use the first)")
    args = parser.parse_args()
    shapes = [shape for shape in args.shapes.split(",") if shape]
    assert shapes and set(shapes) <= set(SHAPES), f"--shapes: one or more of {SHAPES}"
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        existing = os.environ.get("FASTAPI_OPERATOR_TEST_KUBECONFIG")
        if existing:
            cluster = existing_cluster(existing)
        else:
            # 110 pods fit a fake node (the convergence run's and the restart's apps stay until
            # the end); one spare node, so the last apps are not squeezed.
            pods = max(args.apps * (2 if shape == "realistic" else 1) for shape in shapes) + args.restart_apps
            os.environ.setdefault("FASTAPI_OPERATOR_KWOK_NODES", str(max(2, pods // 100 + 1)))
            cluster = stack.enter_context(own_control_plane(work / "cluster"))
        results = run(cluster, args.apps, args.restart_apps, shapes, work)
    width = max(len(name) for name, _ in results)
    print("\nfastapi-operator benchmark")
    for name, value in results:
        print(f"  {name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
