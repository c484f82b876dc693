"""The README's short FastAPIApp and docs/app.md's complete one render to what they say, and every
link between the README and docs/ leads to a file that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def example(page: str, marker: str) -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / page).read_text(), re.S)
    (app,) = [block for block in blocks if "kind: FastAPIApp" in block and marker in block]
    return app


def render(manifest: str) -> str:
    result = subprocess.run([sys.executable, "-m", "fastapi_operator.cli", "render", "-f", "-"],
                            input=manifest, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_example_makes_what_the_readme_says():
    rendered = render(example("README.md", "preStart"))
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered)}
    assert kinds == {"ClusterIssuer", "Deployment", "Ingress", "Job", "Middleware", "NetworkPolicy",
                     "PodDisruptionBudget", "Service"}
    assert "--root-path" in rendered and "alembic" in rendered and "hello.example.com" in rendered


def test_the_complete_example_renders_to_every_kind():
    result_stdout = render(example("docs/app.md", "autoscaling:"))
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result_stdout))
    assert kinds == ["ClusterIssuer", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy",
                     "PodDisruptionBudget", "Service"]
    assert "--root-path" in result_stdout and "alembic" in result_stdout


def test_every_link_in_the_readme_and_docs_leads_to_a_file():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = [f"{page.relative_to(REPO)}: {target}" for page in pages
              for target in re.findall(r"\]\(([\w./-]+)(?:#[\w-]*)?\)", page.read_text())
              if not (page.parent / target).exists()]
    assert not broken, broken


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150, "put the detail in docs/"


def test_the_workloads_example_renders_every_part_and_the_sidecar_in_every_pod():
    documents = list(yaml.safe_load_all(render(example("docs/workloads.md", "workers:"))))
    names = sorted(f"{doc['kind']} {doc['metadata']['name']}" for doc in documents if doc["kind"] != "Job")
    assert names == ["CronJob shop.nightly", "Deployment shop", "Deployment shop.queue", "PodDisruptionBudget shop",
                     "Service shop"]
    templates = [doc["spec"]["template"] if doc["kind"] != "CronJob" else doc["spec"]["jobTemplate"]["spec"]["template"]
                 for doc in documents if doc["kind"] in ("Job", "Deployment", "CronJob")]
    assert len(templates) == 4
    for template in templates:
        assert template["spec"]["initContainers"][0]["name"] == "sql-proxy"
