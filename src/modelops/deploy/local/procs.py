"""Background processes of the rehearsal: started detached, found again by pid, stopped.

The rehearsal's processes play the cluster: they must outlive a controller that is killed,
so that the controller started again finds traffic where it left it. So each one is
started in its own session (a SIGKILL or Ctrl-C of the controller does not reach it), its
pid is recorded in the run folder's manifest, and it is only ever signalled after checking
that the pid still runs a command line naming the run folder (a recycled pid is left alone).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from modelops.errors import ModelopsError

INSTALL_HINT = (
    "install it with `apt-get install nginx prometheus` (Debian/Ubuntu) or "
    "`brew install nginx prometheus` (macOS); see infra/local/README.md"
)


class LocalEnvError(ModelopsError, RuntimeError):
    """The local rehearsal could not start or run; the message says what to do."""


def find_binary(name: str, override: str | None = None) -> str:
    """The path of a required program, or a LocalEnvError saying how to install it."""
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise LocalEnvError(f"{override} is not an executable {name}: {INSTALL_HINT}")
        return override
    # Debian puts nginx in /usr/sbin, which a non-root PATH often lacks.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise LocalEnvError(f"`{name}` is not installed (not on PATH): {INSTALL_HINT}")
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_detached(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start argv in a new session with output appended to `log`; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return process.pid


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child (a zombie still 'exists' otherwise)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def command_line(pid: int) -> str | None:
    """The pid's command line (args joined by spaces), None when it is gone or a zombie.
    psutil reads it the same way on Linux and macOS (no /proc on macOS)."""
    _reap(pid)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        args = process.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return " ".join(args) or None


def is_ours(pid: int | None, marker: str) -> bool:
    """True when `pid` is alive and its command line contains `marker` (the run folder)."""
    if not pid:
        return False
    line = command_line(pid)
    return line is not None and marker in line


def stop_all(pids: list[int], marker: str, *, timeout_s: float = 20.0) -> None:
    """SIGTERM each of our processes at once, wait for all, SIGKILL (their sessions) whatever
    is left after `timeout_s`. Pids not running a command line with `marker` are left alone."""
    ours = [pid for pid in pids if is_ours(pid, marker)]
    for pid in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while ours and time.monotonic() < deadline:
        ours = [pid for pid in ours if is_ours(pid, marker)]
        time.sleep(0.05)
    for pid in ours:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # its session: the workers it started too
    end = time.monotonic() + 5
    while any(is_ours(pid, marker) for pid in ours) and time.monotonic() < end:
        time.sleep(0.05)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
) -> None:
    """Poll `check` until it is true; LocalEnvError (with the log's tail) on timeout or death."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise LocalEnvError(f"{what}: the process exited{log_tail(log)}")
        time.sleep(0.1)
    raise LocalEnvError(f"{what}: not ready after {timeout_s:g}s{log_tail(log)}")


def answers_ok(url: str) -> bool:
    """True when GET url answers 200 (a readiness probe); False while it refuses or fails."""
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.is_file():
        return ""
    tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return f"; the last lines of {log}:\n" + "\n".join(tail) if tail else f" ({log} is empty)"
