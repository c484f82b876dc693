"""Cluster-scoped objects shared between apps: ClusterIssuers and HostClaims. Each is made by the
install whose app needs it, collected only by that install when no app uses it, and never
lost to a collection racing a new app. A host served in one namespace cannot be taken from another."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from fastapi_operator.cache import Cache, watched_sources
from fastapi_operator.meta import tls_secret_name
from fastapi_operator.kube import CERTIFICATE, CLUSTER_ISSUER, DEPLOYMENT, FASTAPIAPP, HOST_CLAIM, INGRESS, SERVICE, Kube
from fastapi_operator.reconcile import Reconciler
from fastapi_operator.settings import Settings
from tests.harness import OperatorProcess, condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.manifests import app_manifest, full_manifest, namespace_host


def issuer_of(cluster, namespace, name):
    return cluster.get(INGRESS, namespace, name)["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]


def tls_app(name, namespace):
    manifest = full_manifest(name, namespace)
    del manifest["spec"]["autoscaling"]
    return manifest


@pytest.fixture
def second_namespace(cluster):
    name = f"t-second-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_namespace_restricted_installs_never_collect_each_others_issuers(
        cluster, namespace, second_namespace, operator_paused, tmp_path):
    installs = {ns: OperatorProcess(cluster, tmp_path / f"{ns}.log", settings={**SESSION_SETTINGS, "namespaces": ns})
                for ns in (namespace, second_namespace)}
    for install in installs.values():
        install.start()
    try:
        for ns in installs:
            cluster.apply(tls_app("web", ns))
        issuers = {ns: eventually(lambda ns=ns: cluster.get(INGRESS, ns, "web") and issuer_of(cluster, ns, "web"))
                   for ns in installs}
        assert issuers[namespace] != issuers[second_namespace], "two installs must not share an issuer"
        for name in issuers.values():
            eventually(lambda name=name: cluster.get(CLUSTER_ISSUER, None, name))

        # A restart collects at startup: the other install's issuer is not this one's to judge.
        installs[namespace].stop()
        installs[namespace].start()
        time.sleep(2)
        assert cluster.get(CLUSTER_ISSUER, None, issuers[second_namespace]) is not None
        assert cluster.get(CLUSTER_ISSUER, None, issuers[namespace]) is not None

        cluster.kubectl("delete", "fapp", "web", "-n", namespace)
        eventually(lambda: cluster.get(CLUSTER_ISSUER, None, issuers[namespace]) is None,
                   message="the install's own unused issuer collected")
        time.sleep(1)
        assert cluster.get(CLUSTER_ISSUER, None, issuers[second_namespace]) is not None
    finally:
        for install in installs.values():
            install.stop()
        cluster.kubectl("delete", "fapp", "--all", "-n", second_namespace, check=False)


def test_a_collection_racing_a_new_app_never_leaves_it_without_its_issuer(cluster, namespace, operator_paused):
    """Made deterministic: the collection is held between "which apps exist" and "delete", and
    a new app that needs the same issuer is reconciled in that gap."""
    reconciler = Reconciler(Kube(cluster.api), Settings(_env_file=None, **SESSION_SETTINGS))
    cluster.apply(tls_app("first", namespace))
    assert reconciler.reconcile(namespace, "first").error is None
    issuer = issuer_of(cluster, namespace, "first")
    cluster.kubectl("delete", "fapp", "first", "-n", namespace)

    listed, proceed = threading.Event(), threading.Event()
    list_apps = reconciler.shared.list_apps

    def held_after_listing():
        apps = list_apps()
        listed.set()
        proceed.wait(10)
        return apps

    reconciler.shared.list_apps = held_after_listing
    collection = threading.Thread(target=reconciler.shared.collect_unused_issuers)
    collection.start()
    assert listed.wait(10)
    cluster.apply(tls_app("second", namespace))
    outcomes = []
    newcomer = threading.Thread(target=lambda: outcomes.append(reconciler.reconcile(namespace, "second")))
    newcomer.start()
    newcomer.join(2)  # Before the fix it finished here, relying on the issuer about to go.
    proceed.set()
    collection.join(10)
    newcomer.join(30)
    assert outcomes and outcomes[0].error is None
    assert issuer_of(cluster, namespace, "second") == issuer
    assert cluster.get(CLUSTER_ISSUER, None, issuer) is not None, "the new app's issuer was collected"


def test_a_certificate_someone_else_made_never_makes_the_app_ready(cluster, namespace):
    # Named like the app's, but for another host, and not made by cert-manager for its Ingress.
    cluster.apply({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": tls_secret_name(namespace, "certified"), "namespace": namespace},
        "spec": {"secretName": tls_secret_name(namespace, "certified"), "dnsNames": ["elsewhere.example.org"],
                 "issuerRef": {"kind": "ClusterIssuer", "name": "anything"}},
    })
    cluster.kube.request("PATCH", CERTIFICATE.path(namespace, tls_secret_name(namespace, "certified")) + "/status",
                       content_type="application/merge-patch+json",
                       body={"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                                        "message": "issued", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    cluster.apply(tls_app("certified", namespace))
    app = eventually(lambda: condition(cluster.app(namespace, "certified"), "CertificateReady").get("reason")
                     == "CertificateNotTheApps" and cluster.app(namespace, "certified"))
    certificate_ready = condition(app, "CertificateReady")
    assert certificate_ready["status"] == "False"
    assert f"Certificate {namespace}/{tls_secret_name(namespace, 'certified')}" in certificate_ready["message"]
    assert condition(app, "Ready")["status"] == "False"


def test_a_host_served_in_one_namespace_cannot_be_taken_from_another(cluster, namespace, second_namespace):
    host = namespace_host(namespace)
    cluster.apply(app_manifest("hello", namespace, ingress={"hosts": [host]}, tls={"enabled": False}))
    eventually(lambda: condition(cluster.app(namespace, "hello"), "Reconciled").get("status") == "True")
    assert cluster.get(HOST_CLAIM, None, host)["spec"]["namespace"] == namespace

    cluster.apply(app_manifest("admin", second_namespace, ingress={"hosts": [host], "path": "/admin"},
                               tls={"acme": {"email": "attacker@example.com"}}))
    reconciled = eventually(lambda: condition(cluster.app(second_namespace, "admin"), "Reconciled").get("reason")
                            == "Conflict" and condition(cluster.app(second_namespace, "admin"), "Reconciled"))
    # Another tenant's namespace and app are not named (setting conflict_names_owner, off by default).
    assert "another namespace" in reconciled["message"] and host in reconciled["message"]
    assert namespace not in reconciled["message"].replace(host, ""), reconciled["message"]
    time.sleep(1)
    for kind in (INGRESS, DEPLOYMENT, SERVICE):
        assert cluster.get(kind, second_namespace, "admin") is None, f"{kind.kind} made for a conflicting app"

    # In the claiming namespace, another app may serve another path of the host.
    cluster.apply(app_manifest("admin", namespace, ingress={"hosts": [host], "path": "/admin"}, tls={"enabled": False}))
    eventually(lambda: condition(cluster.app(namespace, "admin"), "Reconciled").get("status") == "True")

    # When no app in the namespace serves it any more, the claim goes and the host is free.
    cluster.kubectl("delete", "fapp", "hello", "admin", "-n", namespace)
    def released():
        claim = cluster.get(HOST_CLAIM, None, host)
        return claim is None or claim["spec"]["namespace"] == second_namespace
    eventually(released, message="the claim released")
    cluster.kubectl("annotate", "fapp", "admin", "-n", second_namespace, "touch=1")
    eventually(lambda: condition(cluster.app(second_namespace, "admin"), "Reconciled").get("status") == "True",
               timeout=30)
    assert cluster.get(HOST_CLAIM, None, host)["spec"]["namespace"] == second_namespace


def test_an_admin_can_reserve_a_host_for_a_namespace(cluster, namespace):
    host = f"reserved-{uuid.uuid4().hex[:6]}.example.com"
    cluster.apply({"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "HostClaim",
                   "metadata": {"name": host}, "spec": {"namespace": "platform"}})
    try:
        cluster.apply(app_manifest("squatter", namespace, ingress={"hosts": [host]}, tls={"enabled": False}))
        reconciled = eventually(lambda: condition(cluster.app(namespace, "squatter"), "Reconciled").get("reason")
                                == "Conflict" and condition(cluster.app(namespace, "squatter"), "Reconciled"))
        assert "claimed by another namespace" in reconciled["message"] and "platform" not in reconciled["message"]
        cluster.kubectl("delete", "fapp", "squatter", "-n", namespace)
        time.sleep(2)
        assert cluster.get(HOST_CLAIM, None, host) is not None, "an admin's claim is never collected"
    finally:
        cluster.kubectl("delete", "hostclaim", host, check=False)


def test_a_shared_issuer_or_host_claim_deleted_by_hand_is_back_within_two_seconds(cluster, namespace, report):
    cluster.apply(tls_app("web", namespace))
    issuer = eventually(lambda: cluster.get(INGRESS, namespace, "web") and issuer_of(cluster, namespace, "web"))
    host = namespace_host(namespace)
    eventually(lambda: cluster.get(CLUSTER_ISSUER, None, issuer) and cluster.get(HOST_CLAIM, None, host))

    for kind, name in ((CLUSTER_ISSUER, issuer), (HOST_CLAIM, host)):
        uid = cluster.get(kind, None, name)["metadata"]["uid"]
        cluster.kubectl("delete", f"{kind.plural}.{kind.group}", name)
        started = time.monotonic()
        eventually(lambda: (cluster.get(kind, None, name) or {}).get("metadata", {}).get("uid") not in (None, uid),
                   timeout=2, interval=0.05, message=f"{kind.kind} {name} made again")
        report(f"e) deleted {kind.kind} made again in", f"{time.monotonic() - started:.2f}s")


def test_an_unused_issuer_whose_status_just_changed_is_collected_at_once(cluster, namespace, operator_paused):
    """cert-manager writes a ClusterIssuer's status when it registers the ACME account. A
    collection that judges the issuer from a cache that has not seen that write yet deletes with a
    resourceVersion the API server refuses (409): the issuer stayed until the next resync. Made
    deterministic: the cache is given back the issuer as it was before its status changed, which is
    what a watch a moment behind holds."""
    settings = Settings(_env_file=None, **SESSION_SETTINGS)
    cache = Cache(Kube(cluster.api), watched_sources(settings), lambda *_: None)
    cache.start()
    try:
        assert cache.wait_synced(30)
        reconciler = Reconciler(Kube(cluster.api), settings, cache)
        app = tls_app("first", namespace)
        # An email of its own: an issuer no other test's app (in a namespace still going) uses.
        app["spec"]["tls"]["acme"]["email"] = f"{namespace}@example.com"
        cluster.apply(app)
        eventually(lambda: cache.informers[FASTAPIAPP][0].get(namespace, "first"), message="the app in the cache")
        assert reconciler.reconcile(namespace, "first").error is None
        issuer = issuer_of(cluster, namespace, "first")
        (issuers,) = cache.informers[CLUSTER_ISSUER]
        before = eventually(lambda: issuers.get(None, issuer), message="the issuer in the cache")
        cluster.kubectl("patch", "clusterissuer", issuer, "--subresource=status", "--type=merge", "-p",
                        '{"status": {"acme": {"uri": "https://acme.example/acct/1"}}}')
        eventually(lambda: issuers.get(None, issuer)["metadata"]["resourceVersion"]
                   != before["metadata"]["resourceVersion"], message="the status change watched")
        with issuers.lock:
            issuers.objects[(None, issuer)] = before
        cluster.kubectl("delete", "fapp", "first", "-n", namespace)
        eventually(lambda: cache.informers[FASTAPIAPP][0].get(namespace, "first") is None, message="the app gone")
        assert reconciler.shared.collect_unused_issuers() == [issuer]
        assert cluster.get(CLUSTER_ISSUER, None, issuer) is None
    finally:
        cache.stop()
