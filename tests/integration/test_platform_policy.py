"""The platform's policy on what a tenant may ask for: a spec outside it is Reconciled=False,
reason NotAllowed, naming the setting, and nothing is made for it."""

from __future__ import annotations

import json
import time

from fastapi_operator.kube import CLUSTER_ISSUER, DEPLOYMENT, HOST_CLAIM, INGRESS
from tests.harness import OperatorProcess, condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.integration.test_convergence import reconciled_at
from tests.manifests import app_manifest


def refused(cluster, namespace, name):
    reconciled = condition(cluster.app(namespace, name), "Reconciled")
    return reconciled.get("reason") == "NotAllowed" and reconciled


def test_a_spec_outside_the_platform_policy_is_not_allowed_and_makes_nothing(cluster, namespace, operator_paused,
                                                                            tmp_path):
    domain = f"{namespace}.example.com"
    policy = OperatorProcess(cluster, tmp_path / "policy.log", settings={
        **SESSION_SETTINGS, "namespaces": namespace, "allowed_cluster_issuers": "platform-ca",
        "namespace_domains": json.dumps({namespace: [domain]}), "max_hosts_per_namespace": "1"})
    policy.start()
    try:
        cluster.apply(
            app_manifest("server", namespace, ingress={"hosts": [f"a.{domain}"]},
                         tls={"acme": {"email": "ops@example.com", "server": "https://acme.elsewhere.example/dir"}}),
            app_manifest("issuer", namespace, ingress={"hosts": [f"a.{domain}"]}, tls={"clusterIssuer": "dns01-prod"}),
            app_manifest("domain", namespace, ingress={"hosts": ["shop.other-team.example.com"]}, tls={"enabled": False}),
            app_manifest("first", namespace, ingress={"hosts": [f"a.{domain}"]}, tls={"enabled": False}),
        )
        messages = {name: eventually(lambda name=name: refused(cluster, namespace, name), message=name)["message"]
                    for name in ("server", "issuer", "domain")}
        assert "allowed_acme_servers" in messages["server"]
        assert "allowed_cluster_issuers" in messages["issuer"] and "dns01-prod" in messages["issuer"]
        assert "namespace_domains" in messages["domain"] and "shop.other-team.example.com" in messages["domain"]
        eventually(lambda: reconciled_at(cluster, namespace, "first", 1), message="an app inside the policy")

        # The namespace holds one host, its limit: a second one is not allowed, more paths are.
        cluster.apply(app_manifest("second", namespace, ingress={"hosts": [f"b.{domain}"]}, tls={"enabled": False}),
                      app_manifest("more", namespace, ingress={"hosts": [f"a.{domain}"], "path": "/more"},
                                   tls={"enabled": False}))
        assert "max_hosts_per_namespace" in eventually(lambda: refused(cluster, namespace, "second"))["message"]
        eventually(lambda: reconciled_at(cluster, namespace, "more", 1))
        time.sleep(1)
        for name in ("server", "issuer", "domain", "second"):
            assert cluster.get(DEPLOYMENT, namespace, name) is None and cluster.get(INGRESS, namespace, name) is None
        assert cluster.get(HOST_CLAIM, None, "shop.other-team.example.com") is None
        assert cluster.get(HOST_CLAIM, None, f"b.{domain}") is None
        assert not [i for i in cluster.kube.list(CLUSTER_ISSUER)
                    if (i["spec"].get("acme") or {}).get("server") == "https://acme.elsewhere.example/dir"]
    finally:
        policy.stop()
        cluster.kubectl("delete", "fapp", "--all", "-n", namespace, check=False)
