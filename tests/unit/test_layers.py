"""The folder layout is the architecture: the layers of operator/ (pyproject.toml's
[tool.importlinter]) hold, and every module is in docs/architecture.md."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "fastapi_operator"


def test_the_declared_layers_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO / "operator")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_every_module_is_in_the_architecture_page():
    layout = (REPO / "docs" / "architecture.md").read_text()
    modules = {path.name for path in PACKAGE.rglob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    modules |= {f"{path.name}/" for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    missing = sorted(name for name in modules if name not in layout)
    assert not missing, f"modules docs/architecture.md does not mention: {missing}"


def test_no_function_over_50_lines_and_no_class_over_about_150():
    """The structure issue's bound: a function a reader takes in at once, a class with one job."""
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            length = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and length > 50:
                too_long.append(f"{path.relative_to(PACKAGE)}: {node.name}() {length} lines")
            elif isinstance(node, ast.ClassDef) and length > 160:
                too_long.append(f"{path.relative_to(PACKAGE)}: class {node.name} {length} lines")
    assert not too_long, too_long
