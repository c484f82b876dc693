"""The folder layout is the architecture: the layers of operator/ (pyproject.toml's
[tool.importlinter]) hold, and every module is in the README's Layout."""

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


def test_every_module_is_in_the_readmes_layout():
    layout = (REPO / "README.md").read_text().split("## Layout", 1)[1]
    modules = {path.name if path.parent == PACKAGE else f"{path.parent.name}/" for path in PACKAGE.rglob("*.py")
               if path.name not in ("__init__.py", "__main__.py")}
    missing = sorted(name for name in modules if name not in layout)
    assert not missing, f"modules the README's Layout does not mention: {missing}"
