"""b) to f) and k): an app from `kubectl apply` to garbage collection."""

from __future__ import annotations

import time


from fastapi_operator.meta import tls_secret_name
from fastapi_operator.meta import redirect_https_middleware_name, strip_prefix_middleware_name
from fastapi_operator.kube import (
    AUTOSCALER, CERTIFICATE, CLUSTER_ISSUER, DEPLOYMENT, INGRESS, MIDDLEWARE, NETWORK_POLICY, SERVICE,
)
from tests.harness import condition, eventually
from tests.manifests import TEST_IMAGE, TEST_IMAGE_NEXT, app_manifest, full_manifest, namespace_host

NAMESPACED_CHILDREN = (DEPLOYMENT, SERVICE, INGRESS, NETWORK_POLICY, AUTOSCALER)


def issuer_name(cluster, namespace, name):
    return cluster.get(INGRESS, namespace, name)["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]


def test_kubectl_apply_of_a_full_app_creates_every_child_with_owner_references(cluster, namespace, report):
    started = time.monotonic()
    cluster.apply(full_manifest("hello", namespace))
    children = eventually(lambda: all(cluster.get(k, namespace, "hello") for k in NAMESPACED_CHILDREN)
                          and [cluster.get(k, namespace, "hello") for k in NAMESPACED_CHILDREN],
                          timeout=30, message="all five namespaced children")
    elapsed = time.monotonic() - started
    report("b) kubectl apply to all children created", f"{elapsed:.2f}s")

    uid = cluster.app(namespace, "hello")["metadata"]["uid"]
    for child in children:
        refs = child["metadata"]["ownerReferences"]
        assert refs == [{"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp", "name": "hello",
                         "uid": uid, "controller": True, "blockOwnerDeletion": True}], child["kind"]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fastapi-operator"
    issuer = cluster.get(CLUSTER_ISSUER, None, issuer_name(cluster, namespace, "hello"))
    assert issuer["spec"]["acme"]["email"] == "ops@example.com"
    assert "ownerReferences" not in issuer["metadata"]
    command = children[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--root-path") + 1] == "/api"


def test_ready_pods_make_the_app_available_and_its_certificate_decides_ready(cluster, namespace):
    manifest = full_manifest("shop", namespace)
    del manifest["spec"]["autoscaling"]
    cluster.apply(manifest)
    app = eventually(lambda: condition(cluster.app(namespace, "shop"), "Available").get("status") == "True"
                     and cluster.app(namespace, "shop"), timeout=90, message="Available=True")
    assert app["status"]["readyReplicas"] == 2
    assert app["status"]["url"] == f"https://{namespace_host(namespace)}/api"
    assert condition(app, "Ready")["status"] == "False"
    columns = cluster.kubectl("get", "fapp", "shop", "-n", namespace).stdout
    assert f"https://{namespace_host(namespace)}/api" in columns and "2/2" in columns

    if cluster.kubectl("get", "deployment", "cert-manager", "-n", "cert-manager", check=False).returncode == 0:
        _certificate_ready_follows_cert_managers_certificate(cluster, namespace)
        return
    assert condition(app, "CertificateReady")["status"] == "Unknown"

    # Simulating cert-manager, here and only here: ingress-shim's Certificate, then its Ready status.
    ingress = cluster.get(INGRESS, namespace, "shop")
    certificate = {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": tls_secret_name(namespace, "shop"), "namespace": namespace, "ownerReferences": [{
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "shop",
            "uid": ingress["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"secretName": tls_secret_name(namespace, "shop"), "dnsNames": [namespace_host(namespace)],
                 "issuerRef": {"kind": "ClusterIssuer", "name": issuer_name(cluster, namespace, "shop")}},
    }
    cluster.apply(certificate)
    cluster.kube.request("PATCH", CERTIFICATE.path(namespace, tls_secret_name(namespace, "shop")) + "/status",
                       content_type="application/merge-patch+json",
                       body={"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                                        "message": "Certificate is up to date and has not expired",
                                                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    app = eventually(lambda: condition(cluster.app(namespace, "shop"), "Ready").get("status") == "True"
                     and cluster.app(namespace, "shop"), timeout=10, message="Ready=True")
    assert condition(app, "CertificateReady")["reason"] == "CertificateIssued"
    assert "True" in cluster.kubectl("get", "fapp", "shop", "-n", namespace).stdout


def _certificate_ready_follows_cert_managers_certificate(cluster, namespace):
    """A cluster with a real cert-manager (the kind tier): ingress-shim makes the Certificate, and it
    cannot be issued (Let's Encrypt is out of reach and the host is not served). CertificateReady
    says what the Certificate says, and the app is not Ready. Pebble's issued certificate making an
    app Ready is the kind tier's own test."""
    def certificate_ready():
        certificate = cluster.get(CERTIFICATE, namespace, tls_secret_name(namespace, "shop"))
        ready = certificate and condition(certificate, "Ready")
        return ready and ready.get("status") and ready

    ready = eventually(certificate_ready, timeout=60, message="cert-manager's Certificate with a Ready condition")
    assert ready["status"] != "True", ready
    eventually(lambda: condition(cluster.app(namespace, "shop"), "CertificateReady").get("reason") == ready["reason"],
               timeout=10, message=f"CertificateReady reason {ready['reason']} from the Certificate")
    app = cluster.app(namespace, "shop")
    assert condition(app, "CertificateReady")["status"] == ready["status"]
    assert condition(app, "Ready")["status"] == "False"


def test_an_image_change_rolls_the_deployment_and_status_follows_the_generation(cluster, namespace):
    cluster.apply(app_manifest("roll", namespace, image=TEST_IMAGE, replicas=2))
    eventually(lambda: condition(cluster.app(namespace, "roll"), "Available").get("status") == "True")
    cluster.apply(app_manifest("roll", namespace, image=TEST_IMAGE_NEXT, replicas=2))

    def rolled():
        app = cluster.app(namespace, "roll")
        deployment = cluster.get(DEPLOYMENT, namespace, "roll")
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        return (image == TEST_IMAGE_NEXT and app["metadata"]["generation"] == 2
                and app["status"]["observedGeneration"] == 2
                and condition(app, "Available") == {**condition(app, "Available"), "status": "True",
                                                    "observedGeneration": 2}
                and deployment["status"].get("updatedReplicas") == 2)

    eventually(rolled, timeout=120, message=f"rolled to {TEST_IMAGE_NEXT} with observedGeneration 2")
    revisions = cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
    assert len(revisions) == 2


def test_drift_is_repaired_within_five_seconds(cluster, namespace, report):
    cluster.apply(app_manifest("drift", namespace, replicas=2))
    eventually(lambda: cluster.get(SERVICE, namespace, "drift") and cluster.get(DEPLOYMENT, namespace, "drift"))
    time.sleep(1)

    cluster.kubectl("scale", "deployment/drift", "-n", namespace, "--replicas=5")
    started = time.monotonic()
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "drift")["spec"]["replicas"] == 2, timeout=5,
               message="replicas put back to 2")
    report("e) hand-edited replicas repaired in", f"{time.monotonic() - started:.2f}s")

    uid = cluster.get(SERVICE, namespace, "drift")["metadata"]["uid"]
    cluster.kubectl("delete", "service/drift", "-n", namespace)
    started = time.monotonic()
    eventually(lambda: (cluster.get(SERVICE, namespace, "drift") or {}).get("metadata", {}).get("uid") not in (None, uid),
               timeout=5, message="Service recreated")
    report("e) deleted Service recreated in", f"{time.monotonic() - started:.2f}s")


def test_deleting_the_app_collects_every_child_and_the_last_user_takes_the_shared_issuer(cluster, namespace):
    cluster.apply(full_manifest("first", namespace), full_manifest("second", namespace))
    eventually(lambda: all(cluster.get(k, namespace, n) for k in NAMESPACED_CHILDREN for n in ("first", "second")))
    shared = issuer_name(cluster, namespace, "first")
    assert issuer_name(cluster, namespace, "second") == shared

    cluster.kubectl("delete", "fapp", "first", "-n", namespace)
    eventually(lambda: not any(cluster.get(k, namespace, "first") for k in NAMESPACED_CHILDREN),
               message="first's children garbage-collected")
    time.sleep(2)
    assert cluster.get(CLUSTER_ISSUER, None, shared) is not None, "the issuer went while second still uses it"

    cluster.kubectl("delete", "fapp", "second", "-n", namespace)
    eventually(lambda: not any(cluster.get(k, namespace, "second") for k in NAMESPACED_CHILDREN))
    eventually(lambda: cluster.get(CLUSTER_ISSUER, None, shared) is None, message="issuer deleted with its last user")


def test_kubectl_scale_changes_the_deployments_replicas(cluster, namespace):
    cluster.apply(app_manifest("scaled", namespace, replicas=1))
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "scaled"))
    cluster.kubectl("scale", "fapp/scaled", "-n", namespace, "--replicas=3")
    eventually(lambda: cluster.get(DEPLOYMENT, namespace, "scaled")["spec"]["replicas"] == 3,
               message="Deployment scaled to 3")
    eventually(lambda: cluster.app(namespace, "scaled")["status"].get("readyReplicas") == 3)
    scale = cluster.kubectl("get", "--raw", f"/apis/fastapi-operator.dev/v1alpha1/namespaces/{namespace}/fastapiapps/scaled/scale").stdout
    assert '"replicas":3' in scale.replace(" ", "")


def test_children_the_spec_no_longer_asks_for_are_deleted_with_events(cluster, namespace):
    manifest = full_manifest("shrink", namespace)
    cluster.apply(manifest)
    eventually(lambda: all(cluster.get(k, namespace, "shrink") for k in NAMESPACED_CHILDREN))
    issuer = issuer_name(cluster, namespace, "shrink")

    del manifest["spec"]["ingress"], manifest["spec"]["autoscaling"]
    # `kubectl apply`, as a user edits a file: `kubectl replace` races the operator's status
    # writes (it sends the resourceVersion it read and gets 409 Conflict when one landed since).
    cluster.apply(manifest)
    eventually(lambda: not any(cluster.get(k, namespace, "shrink") for k in (INGRESS, NETWORK_POLICY, AUTOSCALER)),
               message="Ingress, NetworkPolicy and HPA deleted")
    assert cluster.get(DEPLOYMENT, namespace, "shrink")["spec"]["replicas"] == 2, "replicas back from the autoscaler"
    # One Event per kind of change and reconcile, naming every object it concerns.
    expected = [(verb, f"{kind} {namespace}/shrink") for kind in ("Ingress", "NetworkPolicy", "HorizontalPodAutoscaler")
                for verb in ("Created", "Deleted")] + [("Updated", f"Deployment {namespace}/shrink")]

    def missing_events():
        events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=shrink",
                                 "-o", "jsonpath={range .items[*]}{.reason}|{.message}{'\\n'}{end}").stdout
        posted = {(reason, what) for reason, _, message in (line.partition("|") for line in events.splitlines())
                  for what in message.removeprefix(f"{reason} ").split("; ")}
        return [event for event in expected if event not in posted]

    # Events are posted after the writes they report, so they may trail the objects by a moment.
    eventually(lambda: not missing_events(), timeout=10, message="an Event for each change")
    app = cluster.app(namespace, "shrink")
    assert "url" not in app["status"]
    # No app uses the issuer now: the next collection (at the latest the 20 s test resync) takes it.
    eventually(lambda: cluster.get(CLUSTER_ISSUER, None, issuer) is None, timeout=45, interval=1,
               message="the unused issuer collected")


def test_traefik_gets_its_middlewares_and_a_redirect_ingress(cluster, namespace):
    manifest = full_manifest("edge", namespace)
    manifest["spec"]["ingress"]["className"] = "traefik"
    cluster.apply(manifest)
    # Applied one after the other: wait for each, not for the first alone.
    strip = eventually(lambda: cluster.get(MIDDLEWARE, namespace, strip_prefix_middleware_name(namespace, "edge")))
    assert strip["spec"] == {"stripPrefix": {"prefixes": ["/api"]}}
    redirect_https = eventually(lambda: cluster.get(MIDDLEWARE, namespace, redirect_https_middleware_name(namespace, "edge")))
    assert redirect_https["spec"]["redirectScheme"]["scheme"] == "https"
    redirect = eventually(lambda: cluster.get(INGRESS, namespace, "edge.http-redirect"))
    assert redirect["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "web"
    main = cluster.get(INGRESS, namespace, "edge")
    assert main["spec"]["ingressClassName"] == "traefik"
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in main["metadata"]["annotations"]

    # Back to nginx: the Traefik-only objects go.
    manifest["spec"]["ingress"]["className"] = "nginx"
    cluster.apply(manifest)
    eventually(lambda: cluster.get(MIDDLEWARE, namespace, strip_prefix_middleware_name(namespace, "edge")) is None
               and cluster.get(INGRESS, namespace, "edge.http-redirect") is None, message="Traefik objects removed")
    annotations = cluster.get(INGRESS, namespace, "edge")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"


def test_an_issuer_whose_last_app_went_while_the_operator_was_down_goes_at_startup(cluster, namespace, operator):
    manifest = full_manifest("orphan", namespace)
    # An issuer of its own: apps of earlier tests, in namespaces still terminating (slow with real
    # pods), would otherwise still use the shared one when the operator starts.
    manifest["spec"]["tls"]["acme"]["email"] = f"{namespace}@example.com"
    cluster.apply(manifest)
    issuer = eventually(lambda: cluster.get(INGRESS, namespace, "orphan") and issuer_name(cluster, namespace, "orphan"))
    assert cluster.get(CLUSTER_ISSUER, None, issuer) is not None
    operator.stop()
    try:
        cluster.kubectl("delete", "fapp", "orphan", "-n", namespace)
        time.sleep(1)
        assert cluster.get(CLUSTER_ISSUER, None, issuer) is not None, "nobody should have collected it yet"
    finally:
        operator.start()
    eventually(lambda: cluster.get(CLUSTER_ISSUER, None, issuer) is None, timeout=15,
               message="the orphaned issuer collected at startup")


def test_any_character_in_an_env_value_reaches_the_deployment_as_written(cluster, namespace):
    """Found by the fuzz test: an emoji used to make every apply fail (the API server's YAML decoder
    refuses JSON's surrogate-pair escapes), and a NEL would have been read as a line break."""
    value = "héllo 👋\x85next\u2028line \x7f"
    cluster.apply(app_manifest("unicode", namespace, env=[{"name": "GREETING", "value": value}]))
    eventually(lambda: condition(cluster.app(namespace, "unicode"), "Reconciled").get("status") == "True",
               message="Reconciled=True")
    container = cluster.get(DEPLOYMENT, namespace, "unicode")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["GREETING"] == value
