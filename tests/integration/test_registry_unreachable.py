"""Every command that talks to MLflow fails fast and plainly when the server is not there.

MLflow's own defaults retry for minutes in silence. Here a refused connection must end the
command within the test's budget (30 s) with exit 1 and one line naming the URI and the cause;
a server that accepts connections but never answers must end within the retry budget the
environment sets (MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT). Nothing is half-registered:
the command stops before it writes anything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

MODELOPS = str(Path(sys.executable).parent / "modelops")
BUDGET_S = 30.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with the run and passing gate report `register` checks before it connects."""
    (tmp_path / "models").mkdir()
    (tmp_path / "reports").mkdir()
    run = {
        "run_id": "0" * 32,
        "model_uri": "models:/m-1",
        "experiment_id": "1",
        "git_commit": "abc",
        "data_md5": "d" * 32,
        "train_rows": 10,
        "fit_seconds": 0.1,
    }
    (tmp_path / "models" / "run.json").write_text(json.dumps(run))
    gate = {"challenger_run_id": run["run_id"], "passed": True, "reasons": []}
    (tmp_path / "reports" / "gate.json").write_text(json.dumps({**gate, "challenger_auc": 0.9}))
    return tmp_path


def refused_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


COMMANDS = {
    "register": ["register"],
    "export-model": ["export-model", "--model-uri", "models:/credit-scoring@champion",
                     "--out", "build/model"],
    "history": ["history"],
    "record-approval": ["record-approval", "--version", "1", "--env", "production",
                        "--approver", "a", "--at", "2026-12-05T08:00:00Z"],
    "retire": ["retire", "1", "--reason", "old"],
    "tag-image": ["deploy", "tag-image", "--version", "1",
                  "--image", "ghcr.io/a/b@sha256:" + "0" * 64],
    "rollback": ["deploy", "rollback", "--env-dir", "infra/terraform/envs/staging"],
    "drift": ["drift", "--data", "data/raw/credit_data.csv", "--reference", "champion"],
}  # fmt: skip


def run(
    args: list[str], cwd: Path, uri: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [MODELOPS, *args, "--params", str(REPO_ROOT / "params.yaml")],
        cwd=cwd,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, **env},
        capture_output=True,
        text=True,
        timeout=BUDGET_S + 30,
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_refused_connection_fails_fast_with_one_line(command: str, workdir: Path) -> None:
    (workdir / "infra").symlink_to(REPO_ROOT / "infra")
    (workdir / "data").symlink_to(REPO_ROOT / "data")
    uri = f"http://127.0.0.1:{refused_port()}"
    done, seconds = run(COMMANDS[command], workdir, uri)
    assert done.returncode == 1, done.stdout + done.stderr
    assert seconds < BUDGET_S
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: MLflow at " + uri) and "unreachable" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (workdir / "build").exists()  # nothing written


def test_silent_server_fails_within_the_retry_budget(workdir: Path, silent_server: int) -> None:
    """The budget is a setting: 1 retry of a 2 s timeout ends well before MLflow's minutes."""
    uri = f"http://127.0.0.1:{silent_server}"
    done, seconds = run(
        ["register"], workdir, uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_TIMEOUT="2",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert seconds < 20, seconds
    assert done.stderr.startswith(f"error: MLflow at {uri}: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
