"""Real services for integration tests: a throwaway PostgreSQL cluster and an `mlflow server`."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path:
    """Debian keeps the server binaries off PATH (/usr/lib/postgresql/<n>/bin); Homebrew and
    other systems put initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    on_path = shutil.which("initdb")
    if not found and on_path is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found: run `make system-deps` (apt-get or brew "
            "install postgresql), as `make test` does"
        )
    return Path(found[-1]).parent if found else Path(str(on_path)).parent


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; drop to the `postgres` system user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def wait_for(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free port, with database `mlflow`.

    It lives in its own /tmp folder: pytest's temp root is private to the user running the
    tests, and the server must run as the `postgres` user when the tests run as root.
    """
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="modelops-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres_user(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        _as_postgres_user(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(root),
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                subprocess.run(
                    [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                    capture_output=True,
                ).returncode
                == 0
            ),
            30,
            "PostgreSQL",
        )
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "mlflow",
            ],
            check=True,
        )
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the lock pins psycopg2.
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` backed by PostgreSQL, serving artifacts from a local folder."""
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = (artifacts.parent / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            postgres_url,
            "--artifacts-destination",
            artifacts.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 90, "mlflow server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
