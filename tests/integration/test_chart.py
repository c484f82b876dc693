"""The chart against the real API server: its manifests are accepted, it installs through
Helm's Go SDK, and the operator runs under exactly the rights it grants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import helm_python as helm
import pytest
import yaml

from fastapi_operator.kube import (
    AUTOSCALER, CLUSTER_ISSUER, DEPLOYMENT, DISRUPTION_BUDGET, INGRESS, NETWORK_POLICY, SERVICE,
)
from tests.harness import Cluster, OperatorProcess, condition, eventually
from tests.integration.conftest import SESSION_SETTINGS
from tests.manifests import SMALL_RESOURCES, full_manifest

CHART = Path(__file__).resolve().parents[2] / "charts" / "fastapi-operator"
RELEASE = "fo-rbac"
RELEASE_NAMESPACE = "fastapi-operator-rbac"
SERVICE_ACCOUNT = f"{RELEASE}-fastapi-operator"
AS_OPERATOR = f"--as=system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}"


def rendered_documents(values: dict) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=RELEASE_NAMESPACE)
    return [d for path, text in rendered.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d]


def test_every_rendered_manifest_passes_a_server_side_dry_run(cluster, namespace):
    documents = rendered_documents({"operator": {"namespaces": [namespace]}})
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NAMESPACE}})
    result = cluster.kubectl("apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", "-",
                             stdin=yaml.safe_dump_all(documents), check=False)
    assert result.returncode == 0, result.stderr
    kinds = sorted({d["kind"] for d in documents})
    assert "CustomResourceDefinition" in kinds and "Deployment" in kinds and "Role" in kinds


@pytest.fixture(scope="module")
def installed_chart(cluster: Cluster) -> Iterator[dict]:
    """The chart, installed with the SDK. The CRD is already on the cluster (applied by the
    control plane or the e2e script), so this release leaves it out: crds.install=false."""
    values = {"crds": {"install": False}, "image": {"repository": "fastapi-operator", "tag": "test"}}
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=RELEASE_NAMESPACE) as config:
        release = config.install(CHART, RELEASE, values, namespace=RELEASE_NAMESPACE, create_namespace=True,
                                 timeout=60)
        try:
            yield release
        finally:
            config.uninstall(RELEASE, timeout=60)


def service_account_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount, with a TokenRequest token."""
    token_request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"expirationSeconds": 3600}}
    created = cluster.kubectl("create", "--raw",
                              f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
                              "-f", "-", stdin=json.dumps(token_request)).stdout
    token = json.loads(created)["status"]["token"]
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": SERVICE_ACCOUNT}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(cluster: Cluster, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", AS_OPERATOR, *args, check=False)
    return result.stdout.strip() == "yes"


def test_the_chart_installs_and_its_service_account_may_do_only_what_the_operator_needs(cluster, installed_chart):
    assert installed_chart["status"] == "deployed"
    deployment = cluster.get(DEPLOYMENT, RELEASE_NAMESPACE, SERVICE_ACCOUNT)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT

    assert can_i(cluster, "patch", "deployments.apps", "-n", "default")
    assert can_i(cluster, "patch", "fastapiapps.fastapi-operator.dev", "--subresource=status", "-n", "default")
    assert can_i(cluster, "delete", "clusterissuers.cert-manager.io")
    assert not can_i(cluster, "get", "secrets", "-n", "default")
    assert not can_i(cluster, "list", "secrets", "--all-namespaces")
    assert not can_i(cluster, "get", "configmaps", "-n", "kube-system")
    assert not can_i(cluster, "create", "pods", "-n", "default")
    assert not can_i(cluster, "update", "deployments.apps", "-n", "default")
    assert not can_i(cluster, "patch", "fastapiapps.fastapi-operator.dev", "-n", "default")
    assert not can_i(cluster, "delete", "namespaces")
    assert not can_i(cluster, "create", "clusterroles.rbac.authorization.k8s.io")
    # Leader election: the one Lease, in the release's namespace only.
    assert can_i(cluster, "patch", "leases.coordination.k8s.io/fastapi-operator", "-n", RELEASE_NAMESPACE)
    assert not can_i(cluster, "patch", "leases.coordination.k8s.io/kube-scheduler", "-n", RELEASE_NAMESPACE)
    assert not can_i(cluster, "patch", "leases.coordination.k8s.io/fastapi-operator", "-n", "default")
    assert not can_i(cluster, "delete", "leases.coordination.k8s.io/fastapi-operator", "-n", RELEASE_NAMESPACE)


def test_a_namespaced_install_cannot_touch_other_namespaces(cluster, namespace):
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=RELEASE_NAMESPACE) as config:
        config.install(CHART, "fo-narrow", {"crds": {"install": False}, "operator": {"namespaces": [namespace]}},
                       namespace=RELEASE_NAMESPACE, create_namespace=True, timeout=60)
        try:
            narrow = f"--as=system:serviceaccount:{RELEASE_NAMESPACE}:fo-narrow-fastapi-operator"
            allowed = cluster.kubectl("auth", "can-i", narrow, "patch", "deployments.apps", "-n", namespace, check=False)
            denied = cluster.kubectl("auth", "can-i", narrow, "patch", "deployments.apps", "-n", "default", check=False)
            secrets = cluster.kubectl("auth", "can-i", narrow, "get", "secrets", "-n", namespace, check=False)
            assert (allowed.stdout.strip(), denied.stdout.strip(), secrets.stdout.strip()) == ("yes", "no", "no")
        finally:
            config.uninstall("fo-narrow", timeout=60)


def test_the_operator_converges_an_app_under_the_charts_service_account(
        cluster, namespace, installed_chart, operator: OperatorProcess, tmp_path):
    """The session's operator (an administrator) steps aside; one authenticated as the chart's
    ServiceAccount runs the whole scenario: apply myapp.yaml, every child, Available."""
    operator.stop()
    restricted = OperatorProcess(cluster, tmp_path / "restricted-operator.log", settings=SESSION_SETTINGS)
    restricted.cluster = Cluster(cluster.kubeconfig, service_account_kubeconfig(cluster, tmp_path / "sa.kubeconfig"),
                                 cluster.kubectl_path, cluster.logs)
    restricted.start()
    try:
        _converge_under_restricted_rights(cluster, namespace, restricted)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n--- operator as {SERVICE_ACCOUNT}:\n{restricted.log_tail(40)}") from None
    finally:
        restricted.stop()
        operator.start()


def _converge_under_restricted_rights(cluster: Cluster, namespace: str, restricted: OperatorProcess) -> None:
    manifest = full_manifest("rbac", namespace)
    manifest["spec"]["preStart"][0]["run"] = "OncePerRollout"  # a migration Job and a PodDisruptionBudget too
    # Rights are the point here, not sizes: small pods fit beside the others on the kind tier's one node.
    manifest["spec"]["resources"] = SMALL_RESOURCES
    cluster.apply(manifest)
    # The Deployment waits for the migration Job, which on real pods starts a container first.
    eventually(lambda: all(cluster.get(kind, namespace, "rbac")
                           for kind in (DEPLOYMENT, SERVICE, INGRESS, NETWORK_POLICY, AUTOSCALER, DISRUPTION_BUDGET)),
               timeout=90, message="every child, made with the chart's rights")
    eventually(lambda: condition(cluster.app(namespace, "rbac"), "Available").get("status") == "True",
               timeout=90, message="Available under the chart's rights")
    issuer = cluster.get(INGRESS, namespace, "rbac")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert cluster.get(CLUSTER_ISSUER, None, issuer) is not None
    log = restricted.log_tail(10_000)
    assert "forbidden" not in log.lower(), log
