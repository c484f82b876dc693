"""The README's complete myapp.yaml is a valid FastAPIApp that renders to the six kinds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def readme_app() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (app,) = [block for block in blocks if "kind: FastAPIApp" in block and "autoscaling:" in block]
    return app


def test_the_readme_example_renders_to_every_kind():
    result = subprocess.run([sys.executable, "-m", "fastapi_operator.cli", "render", "-f", "-"],
                            input=readme_app(), capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout))
    assert kinds == ["ClusterIssuer", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy",
                     "PodDisruptionBudget", "Service"]
    assert "--root-path" in result.stdout and "alembic" in result.stdout
