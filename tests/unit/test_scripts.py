"""The shell scripts are shellchecked."""

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
