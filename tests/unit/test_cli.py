"""`fastapi-operator render` prints what the reconciler would apply; bad input names the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastapi_operator.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO)


def test_render_prints_every_kind_of_the_full_example():
    result = run("render", "-f", "examples/hello/fastapiapp-full.yaml")
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout))
    assert kinds == ["ClusterIssuer", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy",
                     "PodDisruptionBudget", "Service"]
    assert "--root-path" in result.stdout and "&id" not in result.stdout


def test_render_flags_override_settings():
    manifest = yaml.safe_load((REPO / "examples/hello/fastapiapp-full.yaml").read_text())
    del manifest["spec"]["ingress"]["className"]
    result = run("render", "-f", "-", "--ingress-class", "traefik", stdin=yaml.safe_dump(manifest))
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert "Middleware" in kinds
    policy = next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "traefik"}


def test_invalid_input_exits_non_zero_naming_the_field():
    manifest = yaml.safe_load((REPO / "examples/hello/fastapiapp-full.yaml").read_text())
    manifest["spec"]["ingress"]["path"] = "api/"
    result = run("render", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert result.returncode != 0
    assert "spec.ingress.path" in result.stderr
    assert result.stdout == ""


def test_a_spec_only_the_operator_can_judge_is_reported_too():
    manifest = yaml.safe_load((REPO / "examples/hello/fastapiapp-full.yaml").read_text())
    del manifest["spec"]["tls"]
    result = run("render", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert result.returncode != 0
    assert "InvalidSpec" in result.stderr and "spec.tls.acme.email" in result.stderr


def test_crd_command_prints_the_committed_crd():
    result = run("crd")
    assert result.stdout == (REPO / "crds/fastapiapps.fastapi-operator.dev.yaml").read_text()
