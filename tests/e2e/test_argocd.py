"""GitOps with a real Argo CD (v3.6.1, built from its module: tests/e2e/components/argocd): the
FastAPIApp health check runs in Argo CD's own Lua runtime, and on kind, through Argo CD only (no
`kubectl apply` of the apps), an Application made from deploy/argocd/application-apps.yaml syncs a
folder of FastAPIApps from a git server in the cluster: Synced and Healthy, answering over HTTPS,
health that follows a rollout and a failed migration, no drift the operator causes, and prune."""

from __future__ import annotations

import base64
import io
import json
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

def commit(cluster, repository: str, files: dict[str, str], message: str) -> str:
    """Make the repository's apps/ folder hold `files`, commit and push, as a user does: inside the
    git server's pod, so no port is forwarded. Returns the commit."""
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
git checkout -q -B main && rm -rf apps && mkdir apps && base64 -d | tar -x -C apps
git add -A && git -c user.name=tests -c user.email=tests@example.com commit -q --allow-empty -m '{message}'
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
