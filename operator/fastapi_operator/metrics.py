"""Prometheus metrics, under the names every controller built on controller-runtime exposes, so the
dashboards and alerts written for those work unchanged; and the operator's own, about the apps.

One registry of the process's own (not prometheus_client's global one), served on its own port
(setting `metrics_port`). The operator's numbers about apps are read at scrape time from the
watches' cache, the status as stored, so they are never out of step with `kubectl get fapp`.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTROLLER = "fastapiapp"  # the `controller` label, as controller-runtime names a controller after its kind
QUEUE = "fastapiapp"  # the `name` label of the work-queue metrics
LEASE = "fastapi-operator"  # the `name` label of leader_election_master_status

REGISTRY = CollectorRegistry(auto_describe=True)

# controller-runtime: pkg/internal/controller/metrics
RECONCILE_TOTAL = Counter("controller_runtime_reconcile_total", "Total number of reconciliations per controller",
                          ["controller", "result"], registry=REGISTRY)
RECONCILE_ERRORS = Counter("controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per "
                           "controller", ["controller"], registry=REGISTRY)
RECONCILE_TIME = Histogram("controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per "
                           "controller", ["controller"], registry=REGISTRY,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
ACTIVE_WORKERS = Gauge("controller_runtime_active_workers", "Number of currently used workers per controller",
                       ["controller"], registry=REGISTRY)
MAX_CONCURRENT = Gauge("controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per "
                       "controller", ["controller"], registry=REGISTRY)

# client-go: util/workqueue, as controller-runtime registers it
QUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=REGISTRY)
QUEUE_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name"], registry=REGISTRY)
QUEUE_LATENCY = Histogram("workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue "
                          "before being requested", ["name"], registry=REGISTRY,
                          buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60, 300))
WORK_DURATION = Histogram("workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue "
                          "takes", ["name"], registry=REGISTRY, buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60))
QUEUE_RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ["name"],
                        registry=REGISTRY)
LONGEST_RUNNING = Gauge("workqueue_longest_running_processor_seconds", "How many seconds has the longest running "
                        "processor for workqueue been running", ["name"], registry=REGISTRY)
UNFINISHED_WORK = Gauge("workqueue_unfinished_work_seconds", "How many seconds of work has been done that is in "
                        "progress", ["name"], registry=REGISTRY)

# client-go: tools/metrics, as controller-runtime registers it
REST_REQUESTS = Counter("rest_client_requests_total", "Number of HTTP requests, partitioned by status code, method, "
                        "and host", ["code", "method", "host"], registry=REGISTRY)
REST_LATENCY = Histogram("rest_client_request_duration_seconds", "Request latency in seconds. Broken down by verb, "
                         "and host", ["verb", "host"], registry=REGISTRY,
                         buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60))

# client-go: tools/leaderelection
LEADER = Gauge("leader_election_master_status", "Gauge of if the reporting system is master of the relevant lease, "
               "0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.", ["name"],
               registry=REGISTRY)

# The operator's own.
WATCH_RESTARTS = Counter("fastapi_operator_watch_restarts_total", "Watches listed again because they fell too far "
                         "behind (410 Gone) or lost the API server", ["kind"], registry=REGISTRY)
WATCH_REQUESTS = Counter("fastapi_operator_watch_requests_total", "Watches that ran to their end (each asks the "
                         "server for 4 to 4.5 minutes, then is made again): rest_client_requests_total counts them "
                         "among its GETs, as client-go does", registry=REGISTRY)
COLLECTIONS = Counter("fastapi_operator_shared_object_collections_total", "Looks for the ClusterIssuers and "
                      "HostClaims no app uses any more", registry=REGISTRY)
TIME_TO_READY = Histogram("fastapi_operator_spec_change_to_ready_seconds", "Time from the operator first seeing a "
                          "new generation of an app to that generation being Ready", registry=REGISTRY,
                          buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))

MIGRATION_STATES = {"MigrationRunning": "running", "MigrationQueued": "queued", "MigrationFailed": "failed"}


def _condition(app: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (app.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def app_tallies(apps: Iterable[dict[str, Any]]) -> tuple[Tally, Tally]:
    """Apps by (Ready status, Ready reason), and migrations by state, from the stored status. Pure."""
    by_readiness: Tally = Tally()
    migrations: Tally = Tally({state: 0 for state in MIGRATION_STATES.values()})
    for app in apps:
        ready = _condition(app, "Ready")
        by_readiness[(ready.get("status", "Unknown"), ready.get("reason", ""))] += 1
        state = MIGRATION_STATES.get(_condition(app, "Reconciled").get("reason", ""))
        if state:
            migrations[state] += 1
    return by_readiness, migrations


class StoredState(Collector):
    """What is read at scrape time: the apps' conditions and the cache's size, per kind."""

    def __init__(self, apps: Callable[[], list[dict[str, Any]]], cache_sizes: Callable[[], dict[str, int]]) -> None:
        self.apps, self.cache_sizes = apps, cache_sizes

    def collect(self) -> Iterable[GaugeMetricFamily]:
        by_readiness, migrations = app_tallies(self.apps())
        apps = GaugeMetricFamily("fastapi_operator_apps", "FastAPIApps by their Ready condition's status and reason",
                                 labels=["ready", "reason"])
        for (ready, reason), count in sorted(by_readiness.items()):
            apps.add_metric([ready, reason], count)
        yield apps
        running = GaugeMetricFamily("fastapi_operator_migrations", "Apps whose migration Job is running, queued "
                                    "behind an earlier one, or failed (holding the rollout)", labels=["state"])
        for state, count in sorted(migrations.items()):
            running.add_metric([state], count)
        yield running
        cached = GaugeMetricFamily("fastapi_operator_cache_objects", "Objects held by the watches' cache",
                                   labels=["kind"])
        for kind, count in sorted(self.cache_sizes().items()):
            cached.add_metric([kind], count)
        yield cached


class ReadinessClock:
    """How long each generation of an app takes from the operator first seeing it to Ready at that
    generation (fed with every watch event of the apps)."""

    def __init__(self) -> None:
        self.not_ready_since: dict[Any, tuple[int, float]] = {}

    def seen(self, key: Any, app: dict[str, Any]) -> None:
        generation = app["metadata"].get("generation", 0)
        status = app.get("status") or {}
        waiting = self.not_ready_since.get(key)
        if _condition(app, "Ready").get("status") == "True" and status.get("observedGeneration") == generation:
            if waiting and waiting[0] == generation:
                TIME_TO_READY.observe(time.monotonic() - waiting[1])
            self.not_ready_since.pop(key, None)
        elif waiting is None or waiting[0] != generation:
            self.not_ready_since[key] = (generation, time.monotonic())

    def forget(self, key: Any) -> None:
        self.not_ready_since.pop(key, None)


class Reconcile:
    """What one reconcile reports: set `failed` when it asks to be retried."""
    failed = False


@contextmanager
def measured_reconcile() -> Iterator[Reconcile]:
    """controller_runtime_reconcile_total, _errors_total and _time_seconds for one reconcile; an
    exception counts as an error."""
    started, reconcile = time.monotonic(), Reconcile()
    try:
        yield reconcile
    except Exception:
        reconcile.failed = True
        raise
    finally:
        RECONCILE_TIME.labels(CONTROLLER).observe(time.monotonic() - started)
        RECONCILE_TOTAL.labels(CONTROLLER, "error" if reconcile.failed else "success").inc()
        if reconcile.failed:
            RECONCILE_ERRORS.labels(CONTROLLER).inc()


def serve(port: int, state: StoredState, workers: int) -> None:
    """The /metrics endpoint, on a thread of prometheus_client's own."""
    REGISTRY.register(state)
    MAX_CONCURRENT.labels(CONTROLLER).set(workers)
    ACTIVE_WORKERS.labels(CONTROLLER).set(0)
    QUEUE_DEPTH.labels(QUEUE).set(0)
    start_http_server(port, registry=REGISTRY)
