"""No work that nothing asked for: values the API server drops, and values an admission webhook
rewrites, never cause a write, however often the app is reconciled."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fastapi_operator import compare
from fastapi_operator.api import GROUP
from fastapi_operator.kube import DEPLOYMENT, DISRUPTION_BUDGET, FASTAPIAPP, HOST_CLAIM, Kube, kind_of
from fastapi_operator.reconcile import Reconciler, reads
from fastapi_operator.settings import Settings
from tests.harness import condition, eventually, sample
from tests.integration.conftest import SESSION_SETTINGS
from tests.integration.test_metrics import own_operator
from tests.manifests import SMALL_RESOURCES, app_manifest, full_manifest

RECONCILES = 4


def reconcile_again(cluster, namespace: str, name: str, times: int) -> None:
    """An edit of the app's metadata queues a reconcile of it, as a resync does, without a spec change."""
    for count in range(times):
        cluster.kubectl("annotate", "fapp", name, "-n", namespace, f"test/nudge={count}", "--overwrite")
        time.sleep(1)


def test_empty_values_the_api_server_drops_are_written_once(cluster, namespace, operator_paused, tmp_path, report):
    # Empty strings a user may well write, and the API server drops (omitempty): each would
    # otherwise be "missing" from the live Deployment at every compare.
    spec = {"env": [{"name": "EMPTY", "value": ""},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"prefix": "", "configMapRef": {"name": "settings", "optional": True}}],
            "tolerations": [{"key": "", "operator": "Exists"}],
            "resources": SMALL_RESOURCES}
    process = own_operator(cluster, namespace, tmp_path, "empty-values")
    try:
        judge_empty_values(cluster, namespace, process, spec, report)
    finally:
        process.stop()


def judge_empty_values(cluster, namespace, process, spec, report):
    cluster.apply(app_manifest("empty", namespace, **spec))
    # Available too: on real pods (the kind tier) the status moves until they are up, and that
    # status write is work the pods asked for.
    eventually(lambda: condition(cluster.app(namespace, "empty"), "Reconciled").get("status") == "True"
               and condition(cluster.app(namespace, "empty"), "Available").get("status") == "True",
               timeout=180, interval=0.5, message="the app reconciled and Available")
    live = cluster.get(DEPLOYMENT, namespace, "empty")["spec"]["template"]["spec"]
    # What the server made of it: the empty strings gone, fieldRef.apiVersion defaulted.
    assert "value" not in live["containers"][0]["env"][0], json.dumps(live["containers"][0]["env"])
    eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
    time.sleep(2)
    before = process.writes(), sample(process.metrics(), "controller_runtime_reconcile_total")
    reconcile_again(cluster, namespace, "empty", RECONCILES)
    time.sleep(2)
    after = process.writes(), sample(process.metrics(), "controller_runtime_reconcile_total")
    report(f"scale: mutating requests in {RECONCILES} reconciles of an app with empty values the API server drops",
           f"{after[0] - before[0]:.0f} (reconciles: {after[1] - before[1]:.0f})")
    assert after[1] - before[1] >= RECONCILES, "the nudges did not reconcile the app"
    assert after[0] == before[0], f"{after[0] - before[0]:.0f} mutating requests while nothing changed"
    # Not blind: a real change to the same field is written.
    cluster.kubectl("patch", "fapp", "empty", "-n", namespace, "--type=json",
                    "-p", '[{"op": "replace", "path": "/spec/env/0/value", "value": "now"}]')
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "empty")["spec"]["template"]["spec"]["containers"][0]
               ["env"][0].get("value") == "now", message="the new value reached the Deployment")


class ImageMirror:
    """A mutating admission webhook, served by this test over HTTPS on loopback (so only the
    project's own control plane, whose API server runs on this machine, can call it): every
    Deployment's `registry.example/` images become `mirror.example/`, as a platform's image
    mirror does. It counts the requests it sees."""

    def __init__(self, directory: Path) -> None:
        key, certificate = directory / "webhook.key", directory / "webhook.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=webhook",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
                       check=True, capture_output=True)
        self.ca_bundle = base64.b64encode(certificate.read_bytes()).decode()
        self.requests = 0
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mirror.requests += 1
                containers = review["request"]["object"]["spec"]["template"]["spec"]["containers"]
                patch = [{"op": "replace", "path": f"/spec/template/spec/containers/{index}/image",
                          "value": container["image"].replace("registry.example/", "mirror.example/")}
                         for index, container in enumerate(containers) if container["image"].startswith("registry.example/")]
                answer = {"uid": review["request"]["uid"], "allowed": True}
                if patch:
                    answer.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def configuration(self, name: str, namespace: str) -> dict:
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": name},
                "webhooks": [{
                    "name": "mirror.fastapi-operator.test",
                    "clientConfig": {"url": f"https://127.0.0.1:{self.server.server_address[1]}/mutate",
                                     "caBundle": self.ca_bundle},
                    "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                               "resources": ["deployments"], "scope": "Namespaced"}],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                    "timeoutSeconds": 5}]}


def first_image(cluster, namespace: str, name: str) -> str:
    return cluster.get(DEPLOYMENT, namespace, name)["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.own_control_plane
def test_a_child_an_admission_webhook_rewrites_converges_after_one_write(cluster, namespace, operator_paused,
                                                                         tmp_path, report):
    mirror = ImageMirror(tmp_path)
    mirror.thread.start()
    configuration = mirror.configuration(f"image-mirror-{namespace}", namespace)
    cluster.apply(configuration)
    process = own_operator(cluster, namespace, tmp_path, "image-mirror")
    try:
        # The API server takes up a new webhook within a moment: a dry-run create says when.
        probe = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "probe", "namespace": namespace},
                 "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                          "spec": {"containers": [{"name": "c", "image": "registry.example/probe:1"}]}}}}
        eventually(lambda: "mirror.example/" in cluster.kubectl("create", "--dry-run=server", "-o", "jsonpath={..image}",
                                                                "-f", "-", stdin=json.dumps(probe)).stdout,
                   timeout=30, interval=0.5, message="the webhook taken up")
        judge_image_mirror(cluster, namespace, process, mirror, report)
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", configuration["metadata"]["name"], check=False)
        process.stop()
        mirror.server.shutdown()


def judge_image_mirror(cluster, namespace, process, mirror, report):
    cluster.apply(app_manifest("mirrored", namespace, image="registry.example/team/app:1", resources=SMALL_RESOURCES))
    eventually(lambda: condition(cluster.app(namespace, "mirrored"), "Reconciled").get("status") == "True"
               and condition(cluster.app(namespace, "mirrored"), "Available").get("status") == "True",
               timeout=180, interval=0.5, message="the app reconciled and Available")
    assert first_image(cluster, namespace, "mirrored") == "mirror.example/team/app:1"
    counts = []
    for image in ("registry.example/team/app:1", "registry.example/team/app:2"):
        if image.endswith(":2"):
            # Not blind: a new image in the spec is written (once), and mirrored again.
            cluster.kubectl("patch", "fapp", "mirrored", "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"image": image}}))
            eventually(lambda: first_image(cluster, namespace, "mirrored") == "mirror.example/team/app:2",
                       message="the new image written, and mirrored")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        before = process.writes(), mirror.requests
        reconcile_again(cluster, namespace, "mirrored", RECONCILES)
        time.sleep(2)
        counts.append((process.writes() - before[0], mirror.requests - before[1]))
    report(f"scale: mutating requests in {RECONCILES} reconciles of an app whose image a webhook rewrites "
           "(then after an image change)", ", ".join(f"{sent:.0f} (Deployment writes the webhook saw: {seen})"
                                                     for sent, seen in counts))
    assert counts == [(0, 0), (0, 0)], f"writes while nothing changed: {counts}"


def follow_statuses(cluster, namespace: str, seconds: int) -> tuple[list[tuple[float, dict]], threading.Thread]:
    """Every version of the namespace's FastAPIApps from now on, with when it arrived, for `seconds`."""
    version = cluster.kube.request("GET", FASTAPIAPP.path(namespace))["metadata"]["resourceVersion"]
    seen: list[tuple[float, dict]] = []

    def follow() -> None:
        for event in cluster.kube.watch(FASTAPIAPP, namespace, None, version, seconds, seconds + 10):
            if event["type"] in ("ADDED", "MODIFIED"):
                seen.append((time.monotonic(), event["object"]))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return seen, thread


def status_writes(seen: list[tuple[float, dict]], name: str) -> list[tuple[float, dict]]:
    """(seconds after the app was made, status) for each status that differs from the one before."""
    versions = [(at, obj) for at, obj in seen if obj["metadata"]["name"] == name]
    made = versions[0][0]
    writes, last = [], {}
    for at, obj in versions:
        status = obj.get("status") or {}
        if status != last:
            writes.append((at - made, status))
        last = status
    return writes


def test_a_new_app_waits_moments_for_its_deployment_before_its_first_status(cluster, namespace, operator_paused,
                                                                            tmp_path, report):
    """Most new apps get one status write (Available) instead of two (Progressing, then Available);
    one whose pods cannot start still says so within seconds."""
    process = own_operator(cluster, namespace, tmp_path, "first-status")
    try:
        seen, thread = follow_statuses(cluster, namespace, 20)
        # No KWOK node has 64 CPUs: that app's pod stays Pending, and its Deployment never Available.
        cluster.apply(app_manifest("quick", namespace, resources=SMALL_RESOURCES),
                      app_manifest("stuck", namespace, resources={"requests": {"cpu": "64", "memory": "64Mi"},
                                                                   "limits": {"memory": "64Mi"}}))
        thread.join(30)
        quick, stuck = status_writes(seen, "quick"), status_writes(seen, "stuck")
        report("scale: status writes of a new app until Available (seconds after it was made, Available)",
               "; ".join(f"{at:.1f} s {condition({'status': s}, 'Available').get('status')}" for at, s in quick))
        report("scale: first status of an app whose pods cannot start", f"{stuck[0][0]:.1f} s after it was made")
        assert quick and condition({"status": quick[-1][1]}, "Available").get("status") == "True", quick
        first_at, first = quick[0]
        # creationTimestamp has whole seconds: the wait is 2 to 3 s of the 3 the operator allows.
        assert condition({"status": first}, "Available").get("status") == "True" or first_at >= 1.8, (
            f"a status before the Deployment was Available, {first_at:.1f} s after the app was made")
        assert stuck, "the app whose pods cannot start has no status after 20 s"
        at, status = stuck[0]
        assert 1.8 <= at <= 10 and condition({"status": status}, "Available").get("status") == "False", stuck
    finally:
        process.stop()


def test_a_controllers_report_the_apps_status_never_reads_reconciles_nothing(cluster, namespace, operator_paused,
                                                                            tmp_path, report):
    # The disruption controller rewrites a PodDisruptionBudget's status as pods come and go (as the
    # HPA controller does an autoscaler's, every 15 s): the app's status reads neither.
    process = own_operator(cluster, namespace, tmp_path, "reports")
    try:
        cluster.apply(app_manifest("pdb", namespace, replicas=2, resources=SMALL_RESOURCES))
        eventually(lambda: condition(cluster.app(namespace, "pdb"), "Available").get("status") == "True",
                   timeout=120, interval=0.5, message="the app Available")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        before = sample(process.metrics(), "controller_runtime_reconcile_total")
        for healthy in (0, 1, 2):
            budget = cluster.get(DISRUPTION_BUDGET, namespace, "pdb")
            status = {**budget.get("status", {}), "observedGeneration": budget["metadata"]["generation"],
                      "currentHealthy": healthy, "desiredHealthy": 1, "expectedPods": 2,
                      "disruptionsAllowed": max(healthy - 1, 0)}
            cluster.kube.request("PUT", DISRUPTION_BUDGET.path(namespace, "pdb") + "/status",
                                 body={**budget, "status": status})
            time.sleep(0.7)  # past the coalescing of a controller's reports
        time.sleep(2)
        reconciles = sample(process.metrics(), "controller_runtime_reconcile_total") - before
        report("scale: reconciles after 3 status reports on a PodDisruptionBudget", f"{reconciles:.0f}")
        assert reconciles == 0, f"{reconciles:.0f} reconciles for reports the app's status never reads"
        # Not blind: an edit of the same child is repaired.
        cluster.kubectl("patch", "pdb", "pdb", "-n", namespace, "--type=merge", "-p", '{"spec": {"maxUnavailable": 2}}')
        eventually(lambda: cluster.get(DISRUPTION_BUDGET, namespace, "pdb")["spec"]["maxUnavailable"] == 1,
                   message="the hand edit put back")
    finally:
        process.stop()


def test_the_operators_own_host_claim_reconciles_nothing(cluster, namespace, operator_paused, tmp_path, report):
    # An app that serves a host claims it (a cluster-scoped HostClaim): the claim's watch event is
    # the operator's own write, and news to no app. Each one used to queue the app again, and to
    # look at every app in the cluster for the ones serving that host.
    host = f"claimed.{namespace}.example.com"
    process = own_operator(cluster, namespace, tmp_path, "claims")
    try:
        cluster.apply(app_manifest("claimer", namespace, resources=SMALL_RESOURCES,
                                   ingress={"hosts": [host], "className": "nginx"}, tls={"enabled": False}))
        eventually(lambda: condition(cluster.app(namespace, "claimer"), "Available").get("status") == "True",
                   timeout=120, interval=0.5, message="the app Available")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        before = sample(process.metrics(), "controller_runtime_reconcile_total")
        # An admin releases the host: the app claims it again at once (one reconcile, asked for by
        # the deletion), and its new claim asks for nothing more.
        released = cluster.get(HOST_CLAIM, None, host)["metadata"]["uid"]
        cluster.kubectl("delete", "hostclaim", host)
        def claim_uid() -> str | None:
            return (cluster.get(HOST_CLAIM, None, host) or {}).get("metadata", {}).get("uid")
        eventually(lambda: claim_uid() not in (None, released), message="the host claimed again")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        reconciles = sample(process.metrics(), "controller_runtime_reconcile_total") - before
        report("scale: reconciles after a HostClaim was released and claimed again", f"{reconciles:.0f}")
        assert reconciles == 1, f"{reconciles:.0f} reconciles: 1 for the release, the rest for the operator's own claim"
    finally:
        process.stop()


def apply_apps_with_hosts(cluster, namespace: str, process, prefix: str, apps: int, **spec: Any) -> list[str]:
    """`apps` small apps, each with a host of its own (and `spec`), made and settled: every host
    claimed and the operator's queue drained. Returns the hosts."""
    hosts = [f"{prefix}-{i}.{namespace}.example.com" for i in range(apps)]
    cluster.apply(*[app_manifest(f"{prefix}-{i}", namespace, resources=SMALL_RESOURCES, tls={"enabled": False},
                                 ingress={"hosts": [host], "className": "nginx"}, **spec) for i, host in enumerate(hosts)])
    eventually(lambda: all(cluster.get(HOST_CLAIM, None, host) for host in hosts), timeout=120,
               message="every host claimed")
    eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
    return hosts


def test_apps_deleted_together_are_collected_after_together(cluster, namespace, operator_paused, tmp_path, report):
    # Each deleted app may leave a ClusterIssuer or HostClaim no app uses, and looking for them
    # plans every app in the cluster: once per deleted app, deleting a namespace of N apps costs
    # N such looks (N² plans). Deletions that come together are looked at together.
    apps = 20
    process = own_operator(cluster, namespace, tmp_path, "collections")
    try:
        hosts = apply_apps_with_hosts(cluster, namespace, process, "gone", apps)
        before = sample(process.metrics(), "fastapi_operator_shared_object_collections_total")
        cluster.kubectl("delete", "fapp", "--all", "-n", namespace, "--wait=false")
        # Not blind: what the apps left behind is collected.
        eventually(lambda: not any(cluster.get(HOST_CLAIM, None, host) for host in hosts), timeout=60,
                   message="every claim collected")
        time.sleep(3)
        collections = sample(process.metrics(), "fastapi_operator_shared_object_collections_total") - before
        report(f"scale: collections of unused shared objects after {apps} apps deleted at once", f"{collections:.0f}")
        assert collections <= 3, f"{collections:.0f} collections for {apps} apps deleted at once"
    finally:
        process.stop()


def apps_kept_from_deletion(namespace: str) -> list[dict]:
    """A ValidatingAdmissionPolicy that refuses to delete the namespace's FastAPIApps, so its
    deletion takes their children while the apps stay: the order that makes the operator try to
    make children again, every time, instead of only when the namespace controller happens to
    take the children first."""
    name = f"keep-apps-{namespace}"
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": [GROUP], "apiVersions": ["*"],
                                                          "operations": ["DELETE"], "resources": ["fastapiapps"]}]},
                  "validations": [{"expression": "false", "message": "kept for the test"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}},
    ]


def test_apps_going_with_their_namespace_are_refused_once(cluster, namespace, operator_paused, tmp_path, report):
    # A namespace being deleted takes its apps' children: each child's deletion queues its app,
    # whose reconcile renders it and tries to make the child again, and the namespace refuses
    # (403, NamespaceTerminating). Once refused, every app the namespace holds goes with it and
    # nothing they could write would be kept: no other app of it tries, beyond the reconciles
    # already running then, and the deletions of their other children queue nothing. The apps run
    # no pod: on real pods each app's status follows its pods as they go, reconciles worth their
    # writes and not what this counts (59 for 20 apps on kind, with pods).
    apps = 20
    process = own_operator(cluster, namespace, tmp_path, "terminating")
    policy = apps_kept_from_deletion(namespace)
    try:
        apply_apps_with_hosts(cluster, namespace, process, "going", apps, replicas=0)
        cluster.apply(*policy)
        eventually(lambda: cluster.kubectl("delete", "fapp", "going-0", "-n", namespace, "--dry-run=server",
                                           check=False).returncode != 0, message="the apps kept from deletion")
        before = process.metrics()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
        eventually(lambda: not cluster.kube.list(DEPLOYMENT, namespace), timeout=120, message="the children gone")
        eventually(lambda: sample(process.metrics(), "workqueue_depth") == 0, message="the queue drained")
        time.sleep(2)
        after = process.metrics()

        def since(metric: str, **labels: str) -> float:
            return sample(after, metric, **labels) - sample(before, metric, **labels)
        refused, reconciles = since("rest_client_requests_total", code="403"), since("controller_runtime_reconcile_total")
        report(f"scale: {apps} apps' namespace deleted: writes refused; reconciles", f"{refused:.0f}; {reconciles:.0f}")
        assert len(cluster.kube.list(FASTAPIAPP, namespace)) == apps, "the apps stayed while their children went"
        running = Settings().workers
        assert 1 <= refused <= running, (f"{refused:.0f} writes refused as the namespace went, for {apps} apps "
                                         f"(at most one per reconcile running at once, {running})")
        # The first kind's deletions queue each app once, before any is known to be going.
        assert reconciles <= 2 * apps, (f"{reconciles:.0f} reconciles as the namespace went, for {apps} apps: the "
                                        f"deletion of a going app's child queued it")
    finally:
        process.stop()
        for manifest in policy:
            cluster.kubectl("delete", manifest["kind"].lower(), manifest["metadata"]["name"], check=False)
    # Gone before the next test: some wait for every namespace to finish terminating.
    eventually(lambda: namespace not in cluster.kubectl("get", "namespaces", "-o", "name").stdout,
               timeout=180, interval=1, message="the namespace gone once its apps may go")


def test_the_answer_to_an_apply_compares_as_applied(cluster, namespace, operator_paused, monkeypatch):
    """compare.applied_as_sent takes the API server's answer to the operator's own apply as
    matching without comparing it (a new app's children are then compared once, not twice).
    Here every child of a full app, with values the server drops, defaults and canonicalises, is
    compared anyway, as answered and as read again: each matches."""
    manifest = full_manifest("asked", namespace)
    spec = manifest["spec"]
    del spec["preStart"]  # no migration Job: nothing would run it on the control plane
    spec["resources"] = {"requests": {"cpu": "0.25", "memory": "300Mi"}, "limits": {"memory": "0.5Gi"}}
    spec["env"] += [{"name": "EMPTY", "value": ""}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    spec["tolerations"] = [{"key": "", "operator": "Exists"}]
    cluster.apply(manifest)
    taken: list[tuple[dict, dict]] = []

    def recorded(desired, served):
        taken.append((desired, served))
        compare.applied_as_sent(desired, served)
    monkeypatch.setattr(reads, "applied_as_sent", recorded)
    compare.ANSWERS.clear()
    outcome = Reconciler(Kube(cluster.api), Settings(_env_file=None, **SESSION_SETTINGS)).reconcile(namespace, "asked")
    assert outcome is not None and outcome.error is None, outcome

    assert sorted(served["kind"] for _, served in taken) == sorted(
        ["Deployment", "Service", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"])
    for desired, served in taken:
        kind, name = kind_of(desired), desired["metadata"]["name"]
        for live in (served, cluster.get(kind, namespace, name)):
            compare.ANSWERS.clear()
            assert not compare.needs_apply(desired, live), f"{kind.kind} {name} differs from what was applied"
            if kind is DEPLOYMENT:
                assert not compare.changes_pod_template(desired, live)
