"""The shell scripts: shellchecked, and the kind suite honest about what it lacks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((REPO / "scripts").glob("*.sh")), REPO / "tests/controlplane/build.sh", REPO / ".ci/run"]


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: `make setup` installs it (Debian package shellcheck)")
    result = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout


def test_e2e_kind_without_docker_says_what_is_missing_and_fails(tmp_path):
    # An empty PATH stands for a machine with none of the tools.
    result = subprocess.run([shutil.which("bash"), str(REPO / "scripts/e2e-kind.sh")], capture_output=True,
                            text=True, env={"PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "missing: docker kind kubectl helm curl" in result.stderr
