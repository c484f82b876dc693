"""GitOps with a real Argo CD (v3.6.1, built from its module: tests/e2e/components/argocd): the
FastAPIApp health check runs in Argo CD's own Lua runtime, and on kind, through Argo CD only (no
`kubectl apply` of the apps), an Application made from deploy/argocd/application-apps.yaml syncs a
folder of FastAPIApps from a git server in the cluster: Synced and Healthy, answering over HTTPS,
health that follows a rollout and a failed migration, no drift the operator causes, and prune."""

from __future__ import annotations

import base64
import io
import json
import shlex
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.e2e import rig
from tests.e2e.components.argocd.component import COMPONENT as ARGOCD
from tests.e2e.test_rollout_as_one_unit import slow
from tests.e2e.test_user_path import get, kubectl
from tests.harness import eventually
from tests.unit.test_argocd_health import CUSTOMIZATION, HEALTH_TESTS

REPO = Path(__file__).resolve().parents[2]
ARGOCD_CM = REPO / "deploy" / "argocd" / "argocd-cm.yaml"


# --- The health check in Argo CD's own runtime (no cluster) ---

def argocd_health(path: Path) -> tuple[str, str]:
    """`argocd admin settings resource-overrides health`: gopher-lua with Argo CD's libraries, as
    the application controller runs the check, from the argocd-cm.yaml users merge."""
    built = ARGOCD.built()
    assert built is not None
    result = subprocess.run([str(built / "argocd"), "admin", "settings", "resource-overrides", "health", str(path),
                             "--argocd-cm-path", str(ARGOCD_CM)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    return fields["STATUS"], fields.get("MESSAGE", "")


@pytest.mark.parametrize("case", HEALTH_TESTS, ids=[Path(case["inputPath"]).stem for case in HEALTH_TESTS])
def test_every_state_gets_its_health_in_argo_cds_own_lua_runtime(case):
    expected = case["healthStatus"]
    assert argocd_health(CUSTOMIZATION / case["inputPath"]) == (expected["status"], expected["message"])


# --- On kind, through Argo CD ---

def commit(cluster, repository: str, files: dict[str, str], message: str, folder: str = "apps") -> str:
    """Make the repository's `folder` hold `files` (relative paths), commit and push, as a user
    does: inside the git server's pod, so no port is forwarded. Returns the commit."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    script = f"""set -e
[ -d /srv/git/{repository}.git ] || git init -q --bare -b main /srv/git/{repository}.git
work=$(mktemp -d) && git clone -q /srv/git/{repository}.git "$work" 2>/dev/null && cd "$work"
git checkout -q -B main && rm -rf {folder} && mkdir -p {folder} && base64 -d | tar -x -C {folder}
git add -A && git -c user.name=tests -c user.email=tests@example.com commit -q --allow-empty -m {shlex.quote(message)}
git push -q origin main && git rev-parse HEAD && rm -rf "$work"
"""
    output = kubectl(cluster, "exec", "-i", "-n", "argocd", "deploy/git", "--", "sh", "-c", script,
                     stdin=base64.b64encode(archive.getvalue()).decode())
    return output.strip().splitlines()[-1]


def fastapi_app(name: str, namespace: str, image: str, migrate: list[str]) -> str:
    return yaml.safe_dump({
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": image, "replicas": 1, "healthPath": "/health",
                 "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
                 "preStart": [{"name": "migrate", "command": migrate, "run": "OncePerRollout"}],
                 "ingress": {"hosts": [f"{name}.{namespace}.{rig.TEST_DOMAIN}"]},
                 # An email of their own: a ClusterIssuer no other test's apps share, so the tests that
                 # watch an issuer go with its last app never wait for these.
                 "tls": {"acme": {"email": "gitops@example.com"}}},
    })


def application(name: str, repository: str, namespace: str) -> dict:
    """deploy/argocd/application-apps.yaml, pointed at the cluster's git server."""
    shipped = yaml.safe_load((REPO / "deploy" / "argocd" / "application-apps.yaml").read_text())
    shipped["metadata"]["name"] = name
    shipped["spec"]["source"]["repoURL"] = f"git://git.argocd.svc/{repository}.git"
    shipped["spec"]["destination"]["namespace"] = namespace
    return shipped


def state(cluster, name: str) -> dict:
    return (get(cluster, "application", name, "argocd") or {}).get("status") or {}


def resource_health(cluster, name: str, app: str) -> dict:
    resources = state(cluster, name).get("resources") or []
    return next((r.get("health") or {} for r in resources if r["kind"] == "FastAPIApp" and r["name"] == app), {})


def synced_and_healthy(cluster, name: str, revision: str) -> bool:
    status = state(cluster, name)
    return (status.get("sync", {}).get("status") == "Synced" and status.get("sync", {}).get("revision") == revision
            and status.get("health", {}).get("status") == "Healthy")


@pytest.fixture(scope="module")
def gitops(kind_cluster):
    """Two FastAPIApps in git, an Application for them; returns (namespace, Application, repository)."""
    namespace = f"e2e-gitops-{uuid.uuid4().hex[:5]}"
    repository = namespace
    revision = commit(kind_cluster, repository, {
        "one.yaml": fastapi_app("one", namespace, rig.HELLO_IMAGE, slow(1)),
        "two.yaml": fastapi_app("two", namespace, rig.HELLO_IMAGE, slow(1)),
    }, "two apps")
    kubectl(kind_cluster, "apply", "-f", "-", stdin=yaml.safe_dump(application(namespace, repository, namespace)))
    eventually(lambda: synced_and_healthy(kind_cluster, namespace, revision), timeout=300, interval=2,
               message=f"Argo CD: Synced and Healthy at {revision}")
    yield namespace, namespace, repository
    # The Application first (it has no cascading finalizer, and would heal what goes), then the
    # namespace Argo CD made with the apps: nothing of this test outlives it.
    kubectl(kind_cluster, "delete", "application", "-n", "argocd", namespace, "--timeout=60s", check=False)
    kubectl(kind_cluster, "delete", "namespace", namespace, "--timeout=180s", check=False)


def https_status(host: str, ca: Path) -> int:
    result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", str(ca),
                             "--resolve", f"{host}:{rig.HTTPS_PORT}:127.0.0.1", f"https://{host}:{rig.HTTPS_PORT}/health"],
                            capture_output=True, text=True, timeout=30)
    return int(result.stdout or 0)


def test_two_apps_from_git_are_synced_healthy_by_our_check_and_served_over_https(kind_cluster, gitops, pebble_root,
                                                                                 report):
    namespace, name, _ = gitops
    for app in ("one", "two"):
        health = resource_health(kind_cluster, name, app)
        assert health.get("status") == "Healthy", health
        fapp = get(kind_cluster, "fapp", app, namespace)
        assert "argocd.argoproj.io/tracking-id" in fapp["metadata"].get("annotations", {}), "not applied by Argo CD"
        eventually(lambda: https_status(f"{app}.{namespace}.{rig.TEST_DOMAIN}", pebble_root) == 200, timeout=60,
                   interval=1, message=f"{app} over HTTPS with Pebble's certificate")
    report("kind: Argo CD sync of two FastAPIApps", f"Synced, Healthy ({resource_health(kind_cluster, name, 'one')})")


def test_no_drift_the_operator_causes_through_three_reconciliation_periods(kind_cluster, gitops, report):
    _, name, _ = gitops
    history = len(state(kind_cluster, name).get("history") or [])
    seen = set()
    deadline = time.monotonic() + 3 * 15 + 10  # argocd-cm's timeout.reconciliation is 15 s
    while time.monotonic() < deadline:
        status = state(kind_cluster, name)
        seen.add(status.get("sync", {}).get("status"))
        time.sleep(2)
    report("kind: Argo CD after sync, three reconciliation periods", f"sync status seen: {sorted(map(str, seen))}")
    assert seen == {"Synced"}, seen
    assert len(state(kind_cluster, name).get("history") or []) == history, "Argo CD synced again: it saw a difference"


class HttpsProbe:
    """GET /health over HTTPS (Pebble's certificate) every 0.25 s in a thread, until the block ends."""

    def __init__(self, host: str, ca: Path) -> None:
        self.host, self.ca, self.statuses = host, ca, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.statuses.append(https_status(self.host, self.ca))
            self._stop.wait(0.25)

    @property
    def failed(self) -> int:
        return sum(1 for status in self.statuses if status != 200)

    def __enter__(self) -> HttpsProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_health_follows_a_rollout_and_a_failed_migration_while_the_old_version_serves(kind_cluster, gitops,
                                                                                      pebble_root, report):
    namespace, name, repository = gitops
    seen: list[str] = []

    def watch_until(revision: str, wanted: str) -> bool:
        health = resource_health(kind_cluster, name, "one")
        if state(kind_cluster, name).get("sync", {}).get("revision") == revision and health.get("status"):
            if not seen or seen[-1] != health["status"]:
                seen.append(health["status"])
        return bool(seen) and seen[-1] == wanted
    rollout = commit(kind_cluster, repository, {
        "one.yaml": fastapi_app("one", namespace, rig.HELLO_IMAGE_NEXT, slow(20)),
        "two.yaml": fastapi_app("two", namespace, rig.HELLO_IMAGE, slow(1))}, "one: the next image, a 20 s migration")
    eventually(lambda: watch_until(rollout, "Healthy") and len(seen) > 1, timeout=300, interval=1,
               message=f"Progressing, then Healthy (seen: {seen})")
    report("kind: Argo CD health through a rollout", " -> ".join(seen))
    assert "Progressing" in seen

    host = f"one.{namespace}.{rig.TEST_DOMAIN}"
    with HttpsProbe(host, pebble_root) as probe:
        failing = commit(kind_cluster, repository, {
            "one.yaml": fastapi_app("one", namespace, rig.HELLO_IMAGE, slow(1, fail=True)),
            "two.yaml": fastapi_app("two", namespace, rig.HELLO_IMAGE, slow(1))}, "one: a failing migration")
        degraded = eventually(lambda: (lambda h: h if h.get("status") == "Degraded" else None)(
            resource_health(kind_cluster, name, "one")) if state(kind_cluster, name).get("sync", {}).get("revision")
            == failing else None, timeout=180, interval=1, message="Degraded")
        time.sleep(10)
    report("kind: Argo CD health of a failed migration", f"{degraded}; the old version over HTTPS meanwhile: "
                                                          f"{probe.failed} failed of {len(probe.statuses)}")
    assert "MigrationFailed" in degraded.get("message", ""), degraded
    assert len(probe.statuses) >= 20 and probe.failed == 0, probe.statuses
    deployment = get(kind_cluster, "deployment", "one", namespace)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == rig.HELLO_IMAGE_NEXT


def test_removing_an_app_from_git_prunes_it_and_its_children(kind_cluster, gitops):
    namespace, name, repository = gitops
    current = get(kind_cluster, "fapp", "one", namespace)
    image = current["spec"]["image"]
    pruned = commit(kind_cluster, repository, {"one.yaml": fastapi_app("one", namespace, image, slow(1))}, "two goes")
    eventually(lambda: get(kind_cluster, "fapp", "two", namespace) is None, timeout=120, interval=1,
               message="the FastAPIApp pruned")
    eventually(lambda: get(kind_cluster, "deployment", "two", namespace) is None
               and get(kind_cluster, "service", "two", namespace) is None, timeout=60, interval=1,
               message="its children collected with it")
    eventually(lambda: state(kind_cluster, name).get("sync", {}).get("revision") == pruned, timeout=60)
    assert json.loads(kubectl(kind_cluster, "get", "fapp", "-n", namespace, "-o", "json"))["items"][0]["metadata"][
        "name"] == "one"


# --- The operator itself, from its chart, through Argo CD ---

def chart_files() -> dict[str, str]:
    chart = REPO / "charts" / "fastapi-operator"
    return {str(path.relative_to(chart)): path.read_text() for path in sorted(chart.rglob("*")) if path.is_file()}


def operator_application(name: str, repository: str, namespace: str, settings: dict[str, str]) -> dict:
    """deploy/argocd/application-operator.yaml, pointed at the cluster's git server, with the
    images built here and the rig's own install's settings (Pebble as the ACME server, the
    monitoring namespace), so the apps of other tests it meets render the same."""
    shipped = yaml.safe_load((REPO / "deploy" / "argocd" / "application-operator.yaml").read_text())
    shipped["metadata"]["name"] = name
    shipped["spec"]["source"]["repoURL"] = f"git://git.argocd.svc/{repository}.git"
    shipped["spec"]["destination"]["namespace"] = namespace
    repository_name, tag = rig.OPERATOR_IMAGE.split(":")
    values = shipped["spec"]["source"]["helm"]["valuesObject"]
    values["image"] = {"repository": repository_name, "tag": tag, "pullPolicy": "Never"}
    values["operator"].update(settings)
    return shipped


def rig_operator_settings(cluster) -> dict[str, str]:
    """The chart values of the rig's install that the defaults do not give, read off its Deployment."""
    deployment = get(cluster, "deployment", "fastapi-operator", rig.OPERATOR_NAMESPACE)
    env = {variable["name"]: variable.get("value", "")
           for variable in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    return {"acmeServer": env["FASTAPI_OPERATOR_ACME_SERVER"], "acmeCaBundle": env["FASTAPI_OPERATOR_ACME_CA_BUNDLE"],
            "monitoringNamespace": env.get("FASTAPI_OPERATOR_MONITORING_NAMESPACE", "")}


@pytest.fixture
def rig_operator_stopped(kind_cluster):
    """The rig's own operator scaled to none while a second install runs (two would both act on
    every app), and back, Available, when the test ends."""
    deployment = get(kind_cluster, "deployment", "fastapi-operator", rig.OPERATOR_NAMESPACE)
    replicas = deployment["spec"]["replicas"]
    kubectl(kind_cluster, "scale", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator", "--replicas=0")
    eventually(lambda: not json.loads(kubectl(kind_cluster, "get", "pods", "-n", rig.OPERATOR_NAMESPACE, "-l",
                                              "app.kubernetes.io/instance=fastapi-operator", "-o", "json"))["items"],
               timeout=120, interval=1, message="the rig's operator pods gone")
    yield
    kubectl(kind_cluster, "scale", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator", f"--replicas={replicas}")
    kubectl(kind_cluster, "rollout", "status", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator",
            "--timeout=180s")


def test_the_operator_from_its_chart_through_an_application_reconciles_an_app_without_drift(
        kind_cluster, rig_operator_stopped, pebble_root, report):
    name = f"gitops-operator-{uuid.uuid4().hex[:5]}"
    namespace, apps = name, f"{name}-apps"
    revision = commit(kind_cluster, name, chart_files(), "the operator's chart", folder="charts/fastapi-operator")
    settings = rig_operator_settings(kind_cluster)
    started = time.monotonic()
    kubectl(kind_cluster, "apply", "-f", "-", stdin=yaml.safe_dump(operator_application(name, name, namespace, settings)))
    try:
        eventually(lambda: synced_and_healthy(kind_cluster, name, revision), timeout=300, interval=2,
                   message=f"Argo CD: the chart Synced and Healthy at {revision} ({state(kind_cluster, name)})")
        synced = time.monotonic() - started
        kinds = sorted({resource["kind"] for resource in state(kind_cluster, name)["resources"]})
        assert "CustomResourceDefinition" in kinds and "Deployment" in kinds, kinds
        lease = get(kind_cluster, "lease", "fastapi-operator", namespace)
        assert lease and lease["spec"]["holderIdentity"], "the Argo CD install leads: no holder in its Lease"

        kubectl(kind_cluster, "create", "namespace", apps)
        kubectl(kind_cluster, "apply", "-f", "-", stdin=fastapi_app("one", apps, rig.HELLO_IMAGE, slow(1)))
        eventually(lambda: https_status(f"one.{apps}.{rig.TEST_DOMAIN}", pebble_root) == 200, timeout=300, interval=2,
                   message="an app made by the operator Argo CD installed, over HTTPS")
        served = time.monotonic() - started

        history = len(state(kind_cluster, name).get("history") or [])
        seen = set()
        deadline = time.monotonic() + 3 * 15 + 10  # three of argocd-cm's 15 s reconciliation periods
        while time.monotonic() < deadline:
            seen.add(state(kind_cluster, name).get("sync", {}).get("status"))
            time.sleep(2)
        report("kind: the operator's chart through Argo CD",
               f"Synced, Healthy in {synced:.0f}s ({len(kinds)} kinds: {', '.join(kinds)}); an app served over HTTPS "
               f"{served:.0f}s after the Application; sync status over three periods: {sorted(map(str, seen))}")
        assert seen == {"Synced"}, seen
        assert len(state(kind_cluster, name).get("history") or []) == history, "Argo CD synced again: it saw a difference"
    finally:
        # The Application has no cascading finalizer: deleting it leaves what it made, which goes by
        # hand, the CRD excepted (the rig's, which every other test's apps need).
        kubectl(kind_cluster, "delete", "application", "-n", "argocd", name, "--timeout=60s", check=False)
        kubectl(kind_cluster, "delete", "namespace", apps, "--timeout=180s", check=False)
        kubectl(kind_cluster, "delete", "namespace", namespace, "--timeout=120s", check=False)
        kubectl(kind_cluster, "delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={name}",
                check=False)
