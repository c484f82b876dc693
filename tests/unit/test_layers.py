"""The folder layout is the architecture: the layers of operator/ (pyproject.toml's
[tool.importlinter]) hold, and every module is in docs/architecture.md."""

from __future__ import annotations

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
