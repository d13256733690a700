"""Readiness of the whole service, not of one worker.

With several workers on one port (SO_REUSEPORT), a probe's connection reaches any of them:
a worker that has loaded its model must not call the pod ready while another still loads.
Each worker drops a marker `ready-<pid>` in the folder the workers share (the multiprocess
metrics folder) once its model is loaded; /ready answers 200 only when as many live workers
as the launcher started have done so. Without a shared folder (one process, e.g. tests that
build the app directly) the worker's own state is the answer.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MARKER = "ready-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerReadiness:
    """This worker's marker and the count of ready peers in the shared folder."""

    def __init__(self, folder: Path | None, workers: int) -> None:
        self.folder, self.workers = folder, workers
        self._all_ready = folder is None

    def mark_ready(self) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                (self.folder / f"{MARKER}{os.getpid()}").touch()

    def all_ready(self) -> bool:
        """True once `workers` live workers have marked themselves ready (then cached: a
        worker that dies stops the launcher, and with it the service)."""
        if self._all_ready or self.folder is None:
            return True
        pids = []
        with contextlib.suppress(OSError):
            for marker in self.folder.glob(f"{MARKER}*"):
                suffix = marker.name.removeprefix(MARKER)
                if suffix.isdigit() and _alive(int(suffix)):
                    pids.append(int(suffix))
        self._all_ready = len(pids) >= self.workers
        return self._all_ready
