"""Read a model service's prediction log (serving/predlog.py), whatever its layout.

The service appends JSON lines to one file, or to day partitions under a folder
(`<dir>/date=YYYY-MM-DD/*.jsonl`); `read_prediction_log` takes either: a file is read as is, a
folder as every `**/*.jsonl` below it, in path order. Lines cut short by a writer that was
killed mid-write are skipped (and counted), never fatal: the log is evidence, not input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def log_files(path: Path) -> list[Path]:
    """The JSON-lines files of a prediction log: the file itself, or every **/*.jsonl below."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.glob("**/*.jsonl") if p.is_file())
    return []


def read_prediction_log(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed line of the prediction log at `path` (file or folder; none if absent)."""
    skipped = 0
    for file in log_files(path):
        with file.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if isinstance(record, dict):
                    yield record
    if skipped:
        log.warning("%s: skipped %d malformed prediction-log lines", path, skipped)
