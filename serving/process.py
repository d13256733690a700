"""Run the service as a real process on a free port: for tests, benchmarks and rehearsals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`python -m serving` (or any command serving the same API) as a context manager:
    started on enter, ready once GET /ready answers 200, stopped with SIGTERM on exit."""

    def __init__(
        self,
        args: list[str] | None = None,
        *,
        model: str | Path | None = None,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
        ready_path: str = "/ready",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if args is None:
            args = [sys.executable, "-m", "serving", "--port", str(self.port)]
            args += ["--workers", str(workers)] + (["--model", str(model)] if model else [])
        self.args, self.cwd, self.ready_path, self.log = args, cwd, ready_path, log
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self, timeout: float = 90.0) -> ServiceProcess:
        self._out = self.log.open("wb") if self.log else None
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=self._out or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._out else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args} exited with {self.process.returncode}{self._tail()}"
                )
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.url}{self.ready_path} not ready after {timeout}s{self._tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: in-flight requests and the prediction log drain), then kill."""
        code = -1
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        if self._out is not None:
            self._out.close()
            self._out = None
        return code

    def _tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return "\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
