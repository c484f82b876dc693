"""Beyond the web process, on real pods: the example app's arq worker runs a task a request through
Traefik enqueued on the tier's Redis, and the app reads the result back; a one-minute schedule
runs and its pod's log says so; a native sidecar starts before the app and serves it a file from
a shared emptyDir; a rollout under traffic runs its migration once, starts no worker of the new
version before it succeeded, and fails no request."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import pytest

from tests.e2e import rig
from tests.e2e.test_production_rollouts import MINIMUM_RATE, apply
from tests.e2e.test_rollout_as_one_unit import slow
from tests.e2e.test_user_path import condition, get, kubectl, rolled_to
from tests.e2e.traffic import SteadyTraffic
from tests.harness import eventually

HOST = f"work.{rig.TEST_DOMAIN}"
SHARED_FILE = "written by the sidecar into the pod's shared volume"
# The sidecar writes a file into the shared emptyDir and serves that folder on port 9000 (the
# kubelet's probe comes from the node; the app's NetworkPolicy admits no one else to that port).
FILE_SERVER = ("import functools, http.server, pathlib; "
               f"pathlib.Path('/shared/hello.txt').write_text({SHARED_FILE!r}); "
               "http.server.ThreadingHTTPServer(('0.0.0.0', 9000), functools.partial("
               "http.server.SimpleHTTPRequestHandler, directory='/shared')).serve_forever()")


def manifest(namespace: str, image: str, migrate: list[str]) -> dict:
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": "work", "namespace": namespace},
        "spec": {
            "image": image, "replicas": 2, "healthPath": "/health",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
            "env": [{"name": "REDIS_URL", "value": "redis://redis.redis.svc:6379"},
                    {"name": "SIDECAR_URL", "value": "http://127.0.0.1:9000"}],
            "preStart": [{"name": "migrate", "command": migrate, "run": "OncePerRollout"}],
            "volumes": [{"name": "shared", "emptyDir": {"sizeLimit": "16Mi"}}],
            "volumeMounts": [{"name": "shared", "mountPath": "/shared", "readOnly": True}],
            "sidecars": [{"name": "files", "image": image, "command": ["python", "-c", FILE_SERVER],
                          "ports": [{"name": "files", "containerPort": 9000}], "probe": {"tcpPort": 9000},
                          "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
            "workers": [{"name": "queue", "command": ["arq", "app.worker.WorkerSettings"],
                         "probe": {"command": ["arq", "--check", "app.worker.WorkerSettings"], "periodSeconds": 15}}],
            "schedules": [{"name": "tick", "schedule": "* * * * *", "command": ["python", "-m", "app.tick"],
                           "successfulJobsHistoryLimit": 5}],
            "ingress": {"hosts": [HOST], "className": "traefik"},
            "tls": {"enabled": False},
        },
    }


def request(method: str, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", rig.HTTP_PORT, timeout=10)
    try:
        connection.request(method, path, headers={"Host": HOST})
        response = connection.getresponse()
        body = response.read()
        return response.status, json.loads(body) if response.status == 200 else {}
    finally:
        connection.close()


def pods(cluster, namespace: str, selector: str) -> list[dict]:
    return json.loads(kubectl(cluster, "get", "pods", "-n", namespace, "-l", selector, "-o", "json"))["items"]


@pytest.fixture(scope="module")
def namespace(kind_cluster) -> str:
    name = f"e2e-work-{uuid.uuid4().hex[:5]}"
    kubectl(kind_cluster, "create", "namespace", name)
    apply(kind_cluster, manifest(name, rig.HELLO_IMAGE, slow(1)))
    eventually(lambda: condition(get(kind_cluster, "fapp", "work", name), "Ready").get("status") == "True",
               timeout=240, interval=1, message="the app, its worker and its sidecars ready")
    eventually(lambda: request("GET", "/health")[0] == 200, timeout=30, message="Traefik routing")
    return name


def test_a_task_enqueued_through_traefik_is_run_by_the_worker_and_read_back(kind_cluster, namespace, report):
    started = time.monotonic()
    status, body = request("POST", "/tasks?text=hello")
    assert status == 200, status
    done = eventually(lambda: (lambda answer: answer[1] if answer[1].get("status") == "complete" else None)(
        request("GET", f"/tasks/{body['id']}")), timeout=60, interval=0.5, message="the task run")
    report("kind: a task through the worker", f"enqueued and read back in {time.monotonic() - started:.1f}s")
    assert done["result"]["text"] == "HELLO"
    worker_pods = {pod["metadata"]["name"] for pod in pods(kind_cluster, namespace, "fastapi-operator.dev/worker=queue")}
    assert done["result"]["worker"] in worker_pods, "run by a pod of the worker, not of the web app"
    app = get(kind_cluster, "fapp", "work", namespace)
    assert app["status"]["workers"] == [{"name": "queue", "replicas": 1, "readyReplicas": 1}]


def test_a_schedule_runs_on_its_schedule_and_its_pod_logs_it(kind_cluster, namespace, report):
    def succeeded_run() -> dict | None:
        runs = pods(kind_cluster, namespace, "fastapi-operator.dev/schedule=tick")
        return next((pod for pod in runs if pod["status"].get("phase") == "Succeeded"), None)
    run = eventually(succeeded_run, timeout=150, interval=2, message="a run of the one-minute schedule")
    log = kubectl(kind_cluster, "logs", "-n", namespace, run["metadata"]["name"], "-c", "app")
    report("kind: one-minute schedule", log.strip())
    assert "tick from the schedule" in log
    eventually(lambda: (get(kind_cluster, "fapp", "work", namespace)["status"]["schedules"][0]
                        .get("lastSuccessfulTime")), timeout=30, message="the run in the app's status")


def test_a_sidecar_starts_before_the_app_and_serves_it_a_file_from_the_shared_volume(kind_cluster, namespace):
    status, body = request("GET", "/shared/hello.txt")
    assert status == 200 and body["content"] == SHARED_FILE
    for pod in pods(kind_cluster, namespace, "app.kubernetes.io/name=work"):
        sidecar = next(s for s in pod["status"]["initContainerStatuses"] if s["name"] == "files")
        app = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "app")
        assert sidecar["state"]["running"]["startedAt"] <= app["state"]["running"]["startedAt"]
        assert sidecar["ready"] is True


def test_a_rollout_with_a_worker_migrates_once_starts_no_new_worker_before_and_fails_no_request(
        kind_cluster, namespace, report):
    jobs_before = {job["metadata"]["name"] for job in json.loads(kubectl(
        kind_cluster, "get", "jobs", "-n", namespace, "-l", "app.kubernetes.io/component=migration", "-o", "json"))["items"]}
    with SteadyTraffic(HOST, "/health") as traffic:
        started = time.monotonic()
        apply(kind_cluster, manifest(namespace, rig.HELLO_IMAGE_NEXT, slow(15)))
        eventually(lambda: rolled_to(kind_cluster, namespace, "work", rig.HELLO_IMAGE_NEXT, 2)
                   and rolled_to(kind_cluster, namespace, "work.queue", rig.HELLO_IMAGE_NEXT, 1)
                   and condition(get(kind_cluster, "fapp", "work", namespace), "Ready").get("status") == "True",
                   timeout=300, interval=1, message="the web pods and the worker on the new version")
        took = time.monotonic() - started
        time.sleep(3)
    jobs = [job for job in json.loads(kubectl(kind_cluster, "get", "jobs", "-n", namespace, "-l",
                                              "app.kubernetes.io/component=migration", "-o", "json"))["items"]
            if job["metadata"]["name"] not in jobs_before]
    report("kind: rollout with a worker, 15 s migration", f"{took:.0f}s; {traffic.summary()}")
    assert len(jobs) == 1 and jobs[0]["status"].get("succeeded") == 1, "the migration ran once"
    completed = jobs[0]["status"]["completionTime"]
    new_workers = [pod for pod in pods(kind_cluster, namespace, "fastapi-operator.dev/worker=queue")
                   if pod["spec"]["containers"][0]["image"] == rig.HELLO_IMAGE_NEXT]
    assert new_workers and all(pod["metadata"]["creationTimestamp"] >= completed for pod in new_workers), \
        "a worker of the new version started before its migration succeeded"
    assert traffic.rate >= MINIMUM_RATE and traffic.failed == 0, traffic.summary()
