"""The code base stays clean: what `make lint` (and ci.yml's lint job) checks, run by the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
SOURCES = ["src", "serving", "tests", "data"]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["ruff", "check", "--output-format", "concise", *SOURCES], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", *SOURCES], id="ruff-format"),
        pytest.param(["mypy"], id="mypy"),
    ],
)
def test_linters_report_nothing(argv: list[str]) -> None:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{' '.join(argv)} found problems:\n{done.stdout}{done.stderr}"
