"""The shared integration suite (tests/integration), run once more against the kind cluster: the
same claims about the API, now with pods that really start, probe and stop. The chart's operator
steps aside for the run, since the suite starts its own. The tests that stop the project's own
control plane's API server (marker own_control_plane) are left out: that is not a kind node's to stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e import rig

# Real pods on one node: 50 of them take the kubelet ~100 s to start, which measures the node,
# not the operator (the control-plane run keeps 50).
BURST_ON_ONE_NODE = 20
# The operator-paced rollout's apps: 8 real pods rolling 3 at a time still shows the limit held.
PACED_APPS_ON_ONE_NODE = 8


def test_the_shared_integration_suite_passes_against_the_kind_cluster(kind_cluster: rig.KindCluster, report, tmp_path):
    replicas = json.loads(kind_cluster.kubectl("get", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator",
                                               "-o", "json").stdout)["spec"]["replicas"]
    kind_cluster.kubectl("scale", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator", "--replicas=0")
    kind_cluster.kubectl("wait", "-n", rig.OPERATOR_NAMESPACE, "--for=delete", "pod",
                         "-l", "app.kubernetes.io/name=fastapi-operator", "--timeout=60s")
    env = {
        **os.environ,
        "FASTAPI_OPERATOR_TEST_KUBECONFIG": str(kind_cluster.kubeconfig),
        "FASTAPI_OPERATOR_TEST_IMAGE": rig.HELLO_IMAGE,
        "FASTAPI_OPERATOR_TEST_IMAGE_NEXT": rig.HELLO_IMAGE_NEXT,
        "FASTAPI_OPERATOR_TEST_BURST": str(BURST_ON_ONE_NODE),
        "FASTAPI_OPERATOR_TEST_PACED_APPS": str(PACED_APPS_ON_ONE_NODE),
        "PATH": f"{Path(kind_cluster.kubectl_path).parent}{os.pathsep}{os.environ['PATH']}",
    }
    output = tmp_path / "integration-on-kind.log"
    started = time.monotonic()
    try:
        with output.open("w") as log:
            result = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-q", "-p", "no:cacheprovider",
                                     "--durations=10", "-m", "not own_control_plane", "tests/integration"], cwd=rig.REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=1500)
    finally:
        kind_cluster.kubectl("scale", "-n", rig.OPERATOR_NAMESPACE, "deployment/fastapi-operator", f"--replicas={replicas}")
    lines = output.read_text(errors="replace").splitlines()
    summary = next((line for line in reversed(lines) if " passed" in line or " failed" in line), "no summary")
    report("integration suite on kind", f"{summary.strip('= ')} ({time.monotonic() - started:.0f}s)")
    assert result.returncode == 0, "the integration suite failed on kind:\n" + "\n".join(lines[-150:])
    kind_cluster.wait_available(rig.OPERATOR_NAMESPACE, "fastapi-operator")
