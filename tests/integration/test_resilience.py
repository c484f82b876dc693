"""i) and j): a killed operator converges, and a settled one writes nothing."""

from __future__ import annotations

import os
import time

import yaml

from fastapi_operator.kube import DEPLOYMENT, FASTAPIAPP, SERVICE
from tests.harness import condition, eventually, request_counts
from tests.integration.conftest import TEST_RESYNC_SECONDS
from tests.manifests import SMALL_RESOURCES, app_manifest, full_manifest

# The kind tier runs this suite with fewer: there every app is a real pod on one node.
BURST = int(os.environ.get("FASTAPI_OPERATOR_TEST_BURST", "50"))
# A window of one and a half resync periods always holds at least one whole resync.
STEADY_SECONDS = TEST_RESYNC_SECONDS * 3 // 2


def test_sigkill_during_a_burst_of_creates_still_converges_without_duplicates(cluster, namespace, operator, report):
    manifests = [app_manifest(f"burst-{i:02d}", namespace, replicas=1, resources=SMALL_RESOURCES) for i in range(BURST)]
    started = time.monotonic()
    cluster.apply(*manifests[: BURST // 2])
    time.sleep(0.5)
    operator.kill()
    cluster.apply(*manifests[BURST // 2:])
    operator.start()
    report("i) operator restart to liveness endpoint open", f"{operator.startup_seconds:.2f}s")

    def converged():
        apps = cluster.kube.list(FASTAPIAPP, namespace)
        return len(apps) == BURST and all(condition(a, "Available").get("status") == "True" for a in apps)

    eventually(converged, timeout=120, interval=0.5, message=f"all {BURST} apps Available")
    report(f"i) {BURST} apps, operator SIGKILLed mid-burst, all Available after", f"{time.monotonic() - started:.1f}s")

    uids = {a["metadata"]["name"]: a["metadata"]["uid"] for a in cluster.kube.list(FASTAPIAPP, namespace)}
    for kind in (DEPLOYMENT, SERVICE):
        children = cluster.kube.list(kind, namespace, "app.kubernetes.io/managed-by=fastapi-operator")
        assert sorted(c["metadata"]["name"] for c in children) == sorted(uids), kind.kind
        for child in children:
            (owner,) = child["metadata"]["ownerReferences"]
            assert owner["uid"] == uids[child["metadata"]["name"]], "orphaned or re-parented child"
    replica_sets = cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
    assert len(replica_sets) == BURST, "a Deployment was rolled more than once"


def test_a_settled_operator_writes_and_reads_nothing_even_for_a_broken_app(cluster, namespace, operator, report):
    # A permanently broken app rides along: its retries must read, never write.
    broken = app_manifest("broken", namespace, ingress={"hosts": ["broken.example.com"]},
                          tls={"clusterIssuer": "no-such-issuer"})
    cluster.apply(full_manifest("steady", namespace), app_manifest("plain", namespace), broken)
    eventually(lambda: all(condition(cluster.app(namespace, n), "Available").get("status") == "True"
                           for n in ("steady", "plain")), message="both apps Available")
    eventually(lambda: condition(cluster.app(namespace, "broken"), "Reconciled").get("reason") == "InvalidSpec")
    # The autoscaler lifts "steady" from 1 to its minReplicas (2) on its own 15 s beat;
    # that rollout is a real change, so the window starts after it.
    eventually(lambda: cluster.app(namespace, "steady")["status"].get("replicasSummary") == "2/2"
               and condition(cluster.app(namespace, "steady"), "Available").get("status") == "True",
               timeout=60, interval=0.5, message="the autoscaler's scale-up done")
    # Earlier tests' namespaces must finish terminating: the namespace controller's deletes
    # land in the same counters.
    eventually(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
               timeout=120, interval=1, message="no namespace terminating")
    time.sleep(3)

    def operator_events() -> int:
        listed = yaml.safe_load(cluster.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout)["items"]
        return sum(1 for e in listed if e.get("source", {}).get("component") == "fastapi-operator")

    events_before = operator_events()
    metrics_before = cluster.metrics()
    time.sleep(STEADY_SECONDS)
    metrics_after = cluster.metrics()
    events_after = operator_events()
    before, after = request_counts(metrics_before), request_counts(metrics_after)
    writes = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    reads = {key: count - request_counts(metrics_before, {"GET", "LIST"}).get(key, 0)
             for key, count in request_counts(metrics_after, {"GET", "LIST"}).items()}
    reads = {f"{verb} {resource}": int(count) for (verb, resource, _), count in reads.items() if count}
    apps = len(cluster.kube.list(FASTAPIAPP))
    report(f"j) mutating requests in {STEADY_SECONDS}s of steady state (resync every {TEST_RESYNC_SECONDS}s)",
           str(int(sum(writes.values()))))
    report(f"j) GETs and LISTs in the same window ({apps} apps in the cluster, a resync among them)",
           str(reads or 0))
    report("j) Events from the operator in the same window", str(events_after - events_before))
    assert writes == {}, f"writes while nothing changed: {writes}"
    # The resync and the broken app's retries read the watches' cache, not the API server. (A
    # LIST is not asserted: the API server's counters do not say who asked, and the controller
    # manager's informers may list again; the benchmark counts them over a longer window.)
    assert not [key for key in reads if key.startswith("GET")], f"GETs while nothing changed: {reads}"
    assert events_after == events_before, "Events while nothing changed"

    # The measurement is not blind: one spec change shows up in the same counters.
    cluster.kubectl("patch", "fapp", "plain", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "plain")["spec"]["replicas"] == 2)
    changed = request_counts(cluster.metrics())
    assert changed[("APPLY", "deployments", "")] > after[("APPLY", "deployments", "")]
