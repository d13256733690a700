"""The one reader of the service's prediction logs (serving/predlog.py), whatever their layout.

The service appends one JSON object per scored row: {"request_id", "row", "timestamp",
"model_version", "environment", "track", "features": {...}, "score", "decision",
"redacted": [...]}, to one file or to day partitions under a folder
(`<dir>/date=YYYY-MM-DD/predictions-<host>.jsonl`). A file is read as is; a folder as every
log file below it (hidden ones aside), in path order.

One policy for damaged lines everywhere: a last line cut short (no newline: a writer killed
mid-write, or one still writing) is skipped and counted in the notes; any other line that is
not a JSON object is a DataError naming file:line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from modelops.errors import DataError

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".jsonl", ".ndjson", ".log")
SCORE_COLUMN = "score"
LOG_FIELDS = ("request_id", "row", "timestamp", "environment", "track", "model_version")


def log_files(path: Path, suffixes: tuple[str, ...] = LOG_SUFFIXES) -> list[Path]:
    """`path` itself if a file; else every file below the folder ending in one of `suffixes`
    (none under a hidden folder or hidden itself), sorted; [] if `path` does not exist."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix in suffixes
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def read_lines(file: Path, notes: list[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every line of one log file, by the policy above; a skipped
    last line goes to `notes`, or to the log when no notes are kept."""
    with file.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if not line.endswith("\n"):
                    note = f"{file}:{number}: incomplete last line skipped"
                    if notes is None:
                        log.warning(note)  # no caller to report it: the log says it
                    else:
                        notes.append(note)
                    return
                raise DataError(
                    f"{file}:{number}: not valid JSON ({error.msg}); fix or remove the line"
                ) from error
            if not isinstance(record, dict):
                raise DataError(f"{file}:{number}: not a JSON object; is this a prediction log?")
            yield number, record


def read_records(path: Path, notes: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the log at `path` (file or folder; none if absent)."""
    for file in log_files(path):
        for _, record in read_lines(file, notes):
            yield record


def log_row(record: dict[str, Any], file: Path, number: int) -> dict[str, Any]:
    """One table row of a record: its features, the score and the LOG_FIELDS."""
    if not isinstance(record.get("features"), dict):
        raise DataError(
            f"{file}:{number}: no 'features' object; each line must be one prediction as "
            "the service logs it"
        )
    row: dict[str, Any] = dict(record["features"])
    row[SCORE_COLUMN] = record.get("score")
    for name in LOG_FIELDS:
        row[name] = record.get(name)
    return row


def read_log_file(file: Path, notes: list[str], redacted: set[str] | None = None) -> pd.DataFrame:
    """One log file as a frame (`log_row` per line); columns the lines say were redacted are
    added to `redacted`."""
    rows = []
    for number, record in read_lines(file, notes):
        rows.append(log_row(record, file, number))
        if redacted is not None and record.get("redacted"):
            redacted.update(map(str, record["redacted"]))
    return pd.DataFrame(rows)


def read_logs(path: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Every prediction under `path` (file or folder): the frame (features, score and the
    LOG_FIELDS), the files read, and notes."""
    notes: list[str] = []
    files = log_files(path)
    if not files:
        raise DataError(
            f"{path}: no *.jsonl prediction log here; point at the service's log file or folder"
        )
    frame = pd.concat([read_log_file(f, notes) for f in files], ignore_index=True)
    return frame, [str(f) for f in files], notes
