"""What a user's request goes through, on real pods: a FastAPIApp applied with `kubectl apply`
gets a certificate from Pebble through the ClusterIssuer the operator made, and is served over
HTTPS by Traefik into the app, with the prefix, the redirects, the client's address and the
NetworkPolicy all doing what the README says."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.e2e import rig
from tests.harness import Cluster, eventually

HOST = f"hello.{rig.TEST_DOMAIN}"
PREFIX = "/api"
PEBBLE_DIRECTORY = rig.PEBBLE_DIRECTORY


def kubectl(cluster: Cluster, *args: str, stdin: str | None = None, check: bool = True) -> str:
    return cluster.kubectl(*args, stdin=stdin, check=check, timeout=180).stdout


def get(cluster, kind: str, name: str, namespace: str | None = None) -> dict | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    output = kubectl(cluster, *args, check=False)
    return json.loads(output) if output else None


def rolled_to(cluster, namespace: str, deployment_name: str, image: str, replicas: int) -> bool:
    """Every pod runs `image` and is available. Until the Deployment controller has seen the new
    template (observedGeneration), its status still counts the old pods as updated."""
    deployment = get(cluster, "deployment", deployment_name, namespace) or {"metadata": {}, "spec": {}, "status": {}}
    status = deployment.get("status", {})
    template = deployment["spec"].get("template", {}).get("spec", {})
    return (status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
            and template.get("containers", [{}])[0].get("image") == image and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas and status.get("replicas") == replicas)


def condition(app: dict, type_: str) -> dict:
    return next((c for c in app.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def app_manifest(namespace: str, image: str = rig.HELLO_IMAGE, replicas: int = 2) -> dict:
    ca_bundle = base64.b64encode(Path(rig.CACHE / "cluster" / "pebble-ca.crt").read_bytes()).decode()
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": "hello", "namespace": namespace},
        "spec": {
            "image": image, "replicas": replicas, "healthPath": "/health",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
            "preStart": [{"name": "migrate", "command": ["python", "-c", "print('migrated')"]}],
            "ingress": {"hosts": [HOST], "path": PREFIX, "className": "traefik", "hsts": {"maxAgeSeconds": 600}},
            "tls": {"acme": {"email": "ops@example.com", "server": PEBBLE_DIRECTORY, "caBundle": ca_bundle}},
        },
    }


def curl(cluster, path: str, *, scheme: str = "https", headers: dict[str, str] | None = None,
         ca: Path | None = None, host: str = HOST) -> tuple[int, dict[str, str], str]:
    port = rig.HTTPS_PORT if scheme == "https" else rig.HTTP_PORT
    command = ["curl", "-sS", "--max-time", "10", "-D", "-", "--resolve", f"{host}:{port}:127.0.0.1"]
    if ca:
        command += ["--cacert", str(ca)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, f"{scheme}://{host}:{port}{path}"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError(f"curl {path}: {result.stderr}")
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    response_headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), response_headers, body


@pytest.fixture(scope="module")
def app_namespace(kind_cluster) -> str:
    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    kubectl(kind_cluster, "create", "namespace", namespace)
    kubectl(kind_cluster, "apply", "-f", "-", stdin=yaml.safe_dump(app_manifest(namespace)))
    return namespace


@pytest.fixture(scope="module")
def ready_app(kind_cluster, app_namespace, report) -> dict:
    started = time.monotonic()
    app = eventually(lambda: condition(get(kind_cluster, "fapp", "hello", app_namespace) or {}, "Ready").get("status")
                     == "True" and get(kind_cluster, "fapp", "hello", app_namespace),
                     timeout=300, interval=2, message="the app Ready with a certificate from Pebble")
    report("kind: kubectl apply to Ready (pods up, certificate issued by Pebble)", f"{time.monotonic() - started:.0f}s")
    return app


def served_with_pebbles_certificate(cluster, pebble_root: Path, path: str = f"{PREFIX}/echo") -> None:
    """Ready says the certificate is issued; Traefik loads the Secret a moment later."""
    def serving() -> bool:
        try:
            return curl(cluster, path, ca=pebble_root)[0] == 200
        except AssertionError as error:
            assert "certificate" in str(error), error
            return False
    eventually(serving, timeout=30, interval=1, message="Traefik serving the issued certificate")


def test_https_with_a_certificate_from_pebble_shows_the_app_the_scheme_prefix_and_client(
        kind_cluster, app_namespace, ready_app, pebble_root):
    assert condition(ready_app, "CertificateReady")["status"] == "True"
    served_with_pebbles_certificate(kind_cluster, pebble_root)
    status, _, body = curl(kind_cluster, f"{PREFIX}/echo", ca=pebble_root)
    assert status == 200
    echo = json.loads(body)
    assert echo["scheme"] == "https"
    assert echo["root_path"] == PREFIX
    assert echo["url"] == f"https://{HOST}:{rig.HTTPS_PORT}{PREFIX}/echo"
    # The client as Traefik saw it: this machine, through the kind network's gateway.
    gateway = json.loads(kind_cluster.engine.docker("network", "inspect", "kind"))[0]["IPAM"]["Config"]
    assert echo["client"] in {c.get("Gateway") for c in gateway}


def test_the_certificate_is_pebbles_and_nothing_else_is_trusted(kind_cluster, ready_app, tmp_path):
    other_ca = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca)], check=True, capture_output=True)
    with pytest.raises(AssertionError, match="certificate"):
        curl(kind_cluster, f"{PREFIX}/echo", ca=other_ca)


def test_redirects_stay_on_https_under_the_prefix_and_docs_find_openapi_json(kind_cluster, ready_app, pebble_root):
    status, headers, _ = curl(kind_cluster, f"{PREFIX}/items", ca=pebble_root)
    assert status in (307, 308)
    assert headers["location"] == f"https://{HOST}:{rig.HTTPS_PORT}{PREFIX}/items/"
    status, _, docs = curl(kind_cluster, f"{PREFIX}/docs", ca=pebble_root)
    assert status == 200 and f"url: '{PREFIX}/openapi.json'" in docs
    status, _, schema = curl(kind_cluster, f"{PREFIX}/openapi.json", ca=pebble_root)
    assert status == 200 and "/echo" in json.loads(schema)["paths"]


def test_plain_http_is_redirected_to_https(kind_cluster, ready_app):
    status, headers, _ = curl(kind_cluster, f"{PREFIX}/echo", scheme="http")
    assert status in (301, 308)
    assert headers["location"].startswith(f"https://{HOST}")


def test_https_answers_carry_hsts_and_the_plain_http_redirect_does_not(kind_cluster, ready_app, pebble_root):
    _, headers, _ = curl(kind_cluster, f"{PREFIX}/echo", ca=pebble_root)
    assert headers.get("strict-transport-security") == "max-age=600"
    _, headers, _ = curl(kind_cluster, f"{PREFIX}/echo", scheme="http")
    assert "strict-transport-security" not in headers


def test_only_the_prefix_reaches_the_app(kind_cluster, ready_app, pebble_root):
    for near_miss in (f"{PREFIX}x/echo", "/API/echo", "/echo"):
        status, _, _ = curl(kind_cluster, near_miss, ca=pebble_root)
        assert status == 404, f"{near_miss} reached the app"


def test_the_pre_start_step_ran_to_completion_before_the_app_started(kind_cluster, app_namespace, ready_app):
    pods = json.loads(kubectl(kind_cluster, "get", "pods", "-n", app_namespace, "-l",
                              "app.kubernetes.io/instance=hello", "-o", "json"))["items"]
    assert pods
    for pod in pods:
        (step,) = pod["status"]["initContainerStatuses"]
        finished = step["state"]["terminated"]
        assert finished["exitCode"] == 0
        app_started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        assert finished["finishedAt"] <= app_started
        assert kubectl(kind_cluster, "logs", "-n", app_namespace, pod["metadata"]["name"], "-c", "migrate").strip() == "migrated"


def run_probe_pod(cluster, namespace: str, name: str, target: str, headers: dict[str, str] | None = None) -> str:
    """A pod that tries to reach `target` directly, as any workload could."""
    script = (
        "import json, urllib.request, sys\n"
        f"request = urllib.request.Request({target!r}, headers={json.dumps(headers or {})})\n"
        "try:\n"
        "    print(urllib.request.urlopen(request, timeout=5).read().decode())\n"
        "except Exception as error:\n"
        "    print(f'unreachable: {error}')\n")
    kubectl(cluster, "run", name, "-n", namespace, "--image", rig.HELLO_IMAGE, "--image-pull-policy=Never",
            "--restart=Never", "--command", "--", "python", "-c", script)
    eventually(lambda: (get(cluster, "pod", name, namespace) or {}).get("status", {}).get("phase") in ("Succeeded", "Failed"),
               timeout=90, interval=1, message=f"probe pod {name} finished")
    return kubectl(cluster, "logs", "-n", namespace, name)


def test_only_traefik_reaches_the_pods_so_forged_forwarded_headers_go_nowhere(
        kind_cluster, app_namespace, ready_app, pebble_root):
    pod_ip = json.loads(kubectl(kind_cluster, "get", "pods", "-n", app_namespace, "-l",
                                "app.kubernetes.io/instance=hello", "-o", "json"))["items"][0]["status"]["podIP"]
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    intruders = f"intruder-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", intruders)
    try:
        # The app trusts forwarded headers from anyone (forwarded_allow_ips "*"): only the
        # NetworkPolicy stands between a pod and a forged client address.
        elsewhere = run_probe_pod(kind_cluster, intruders, "forger", f"http://{pod_ip}:8000/echo", forged)
        assert elsewhere.startswith("unreachable"), f"a pod in another namespace reached the app: {elsewhere}"
        neighbour = run_probe_pod(kind_cluster, app_namespace, "neighbour", f"http://{pod_ip}:8000/echo", forged)
        assert neighbour.startswith("unreachable"), f"a pod beside the app reached it: {neighbour}"
    finally:
        kubectl(kind_cluster, "delete", "namespace", intruders, "--wait=false", check=False)
        kubectl(kind_cluster, "delete", "pod", "neighbour", "-n", app_namespace, "--wait=false", check=False)
    # Through Traefik it works, and a client's own forged headers are replaced, not believed.
    status, _, body = curl(kind_cluster, f"{PREFIX}/echo", ca=pebble_root,
                           headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"})
    assert status == 200
    echo = json.loads(body)
    assert echo["client"] != "203.0.113.7" and echo["scheme"] == "https"


def _paths(value, prefix=""):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, f"{prefix}[{index}]")
    else:
        yield prefix


def test_every_field_of_the_issuer_the_operator_renders_is_stored_as_rendered(
        kind_cluster, app_namespace, ready_app):
    ingress = get(kind_cluster, "ingress", "hello", app_namespace)
    issuer_name = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    live = get(kind_cluster, "clusterissuer", issuer_name)
    rendered = subprocess.run(
        [sys.executable, "-m", "fastapi_operator.cli", "render", "-f", "-",
         "--ingress-class", "traefik", "--ingress-namespace", "traefik"],
        input=yaml.safe_dump(app_manifest(app_namespace)), capture_output=True, text=True, check=True).stdout
    (issuer,) = [m for m in yaml.safe_load_all(rendered) if m and m["kind"] == "ClusterIssuer"]
    live_paths = set(_paths({"spec": live["spec"]}))
    pruned = {p for p in _paths({"spec": issuer["spec"]}) if p not in live_paths}
    assert pruned == set(), f"dropped by the API server: {pruned}"
    assert live["spec"]["acme"]["solvers"] == issuer["spec"]["acme"]["solvers"]
    assert live["spec"]["acme"]["caBundle"] == issuer["spec"]["acme"]["caBundle"]
    assert live["spec"]["acme"]["server"] == PEBBLE_DIRECTORY


def test_an_image_change_rolls_out_under_steady_traffic(kind_cluster, app_namespace, ready_app, pebble_root, report):
    results: list[int] = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                status, _, _ = curl(kind_cluster, f"{PREFIX}/health", ca=pebble_root)
            except AssertionError:
                status = 0
            results.append(status)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(2)
        manifest = app_manifest(app_namespace, image=rig.HELLO_IMAGE_NEXT)
        kubectl(kind_cluster, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))

        eventually(lambda: rolled_to(kind_cluster, app_namespace, "hello", rig.HELLO_IMAGE_NEXT, 2), timeout=180,
                   interval=1, message="rolled out to the next image")
        time.sleep(3)
    finally:
        stop.set()
        worker.join()
    failed = sum(1 for status in results if status != 200)
    report("kind: failed requests during a rollout under steady traffic", f"{failed} of {len(results)}")
    assert len(results) > 20, "too little traffic to judge the rollout"
    assert failed == 0, f"{failed} of {len(results)} requests failed during the rollout"


def test_kubectl_scale_fapp_changes_the_ready_replicas(kind_cluster, app_namespace, ready_app):
    kubectl(kind_cluster, "scale", "fapp/hello", "-n", app_namespace, "--replicas=3")
    eventually(lambda: (get(kind_cluster, "fapp", "hello", app_namespace) or {}).get("status", {}).get("readyReplicas") == 3,
               timeout=120, interval=1, message="3 ready replicas")


def test_deleting_the_app_removes_its_children_and_its_last_issuer(kind_cluster, app_namespace, ready_app):
    ingress = get(kind_cluster, "ingress", "hello", app_namespace)
    issuer_name = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    kubectl(kind_cluster, "delete", "fapp", "hello", "-n", app_namespace)
    for kind in ("deployment", "service", "ingress", "networkpolicy"):
        eventually(lambda kind=kind: get(kind_cluster, kind, "hello", app_namespace) is None, timeout=60,
                   message=f"{kind} garbage-collected")
    eventually(lambda: get(kind_cluster, "clusterissuer", issuer_name) is None, timeout=60,
               message="the issuer deleted with its last app")
    eventually(lambda: get(kind_cluster, "hostclaim", HOST) is None, timeout=60, message="the host claim released")


def test_the_readmes_quick_start_example_is_served_with_a_certificate_from_the_default_acme_server(
        kind_cluster, ready_app, pebble_root):
    """examples/hello/fastapiapp-kind.yaml names only an email: the operator's settings (from the
    chart) point it at Pebble. Runs after the app above is deleted, which releases the host."""
    namespace = f"quickstart-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", namespace)
    try:
        kubectl(kind_cluster, "apply", "-n", namespace, "-f", str(rig.REPO / "examples" / "hello" / "fastapiapp-kind.yaml"))
        eventually(lambda: condition(get(kind_cluster, "fapp", "hello", namespace) or {}, "Ready").get("status") == "True",
                   timeout=300, interval=2, message="the quick-start app Ready")
        served_with_pebbles_certificate(kind_cluster, pebble_root)
        status, _, body = curl(kind_cluster, "/api/echo", ca=pebble_root)
        assert status == 200 and json.loads(body)["root_path"] == "/api"
    finally:
        kubectl(kind_cluster, "delete", "namespace", namespace, "--wait=false", check=False)
