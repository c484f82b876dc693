"""The README's first commands, as a newcomer types them: `make run` brings up the local control
plane and the operator, every example app becomes Available, and it says what to do next;
`make down` leaves nothing running."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import yaml

from tests.controlplane.cluster import running

REPO = Path(__file__).resolve().parents[2]


def test_make_run_serves_the_examples_and_make_down_leaves_nothing_running(tmp_path):
    state = tmp_path / "cluster"
    env = {**os.environ, "FASTAPI_OPERATOR_CLUSTER_DIR": str(state)}
    run = subprocess.run(["make", "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    try:
        assert run.returncode == 0, f"make run failed:\n{run.stdout}\n{run.stderr}"
        assert "Stop everything with: make down" in run.stdout and "export KUBECONFIG=" in run.stdout, run.stdout
        kubeconfig = next(line.split("KUBECONFIG=")[1].split()[0] for line in run.stdout.splitlines()
                          if "export KUBECONFIG=" in line)
        kubectl = Path((state / "bin").read_text().strip()) / "kubectl"
        listed = subprocess.run([str(kubectl), "--kubeconfig", kubeconfig, "get", "fapp", "-n", "examples", "-o", "json"],
                                capture_output=True, text=True, check=True).stdout
        apps = json.loads(listed)["items"]
        assert {app["metadata"]["name"] for app in apps} == {"hello", "hello-api"}
        for app in apps:
            conditions = {c["type"]: c for c in app["status"]["conditions"]}
            assert conditions["Available"]["status"] == "True", (app["metadata"]["name"], conditions)
            assert conditions["Reconciled"]["status"] == "True", (app["metadata"]["name"], conditions)
        server = urlparse(yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"])
        operator_pid = int((state / "operator.pid").read_text())
        cluster_pids = [int(p.read_text()) for p in (state / "pids").iterdir()]
    finally:
        down = subprocess.run(["make", "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, f"make down failed:\n{down.stdout}\n{down.stderr}"
    # When `make down` returns, not a moment later.
    assert not running(operator_pid), "the operator still runs"
    assert not [pid for pid in cluster_pids if running(pid)], "a control plane process still runs"
    with socket.socket() as probe:
        assert probe.connect_ex((server.hostname, server.port)) != 0, f"port {server.port} is still held"
