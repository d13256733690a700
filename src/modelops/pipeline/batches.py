"""The assemble stage: the training table is the base data plus the source batches in the window.

The source (`source.url` in params.yaml) is a folder or a bucket prefix where labeled batches
land as CSV or parquet files. DVC watches it: it is a dependency of the assemble stage, so
`dvc repro` reruns the stage when a batch arrives, changes or leaves, and the table it writes
is cached and pushed like any output. Files are read through fsspec (local folders here,
s3:// or gs:// with DVC's own plugins, dvc-s3 / dvc-gs, which bring s3fs / gcsfs).

Batches are ordered by their path in the source (name them so that they sort in arrival order:
`modelops feedback` writes `feedback-YYYY-MM-DDTHHMMSSZ.parquet`). The window keeps the last
`source.window.batches`, or those dated within `source.window.days` of the newest batch (the
YYYY-MM-DD in the path): relative to the data, not the clock, so a rerun assembles the same
table. Each batch in the window is validated on its own; a bad one is quarantined (left out,
reported with file, column and problem) and never stops the stage.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops.config import DataParams, DataValidationParams, WindowParams
from modelops.errors import DataError
from modelops.pipeline.data import canonical_labels, read_table
from modelops.pipeline.data_validation import validate_batch
from modelops.registry.tracking import file_md5

SUFFIXES = (".csv", ".parquet")
TABLE_FILE = "table.parquet"
LINEAGE_FILE = "lineage.json"
DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

INCLUDED, QUARANTINED, OUTSIDE = "included", "quarantined", "outside_window"


@dataclass
class Batch:
    """One file of the source: its name (path inside the source), hash, date and fate."""

    name: str
    md5: str
    status: str = OUTSIDE
    rows: int | None = None
    date: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise DataError(
            f"source.url {url!r}: no filesystem for it ({error}); for s3:// install dvc-s3, "
            "for gs:// dvc-gs (they bring s3fs / gcsfs)"
        ) from error


def list_batches(url: str) -> tuple[list[str], list[str]]:
    """(batch names, other files) under the source, names relative to it, sorted."""
    fs, root = _fs(url)
    if not fs.exists(root):
        raise DataError(
            f"source.url {url!r}: not found; create the folder (or bucket prefix) where "
            "labeled batches land, or point source.url in params.yaml at it"
        )
    root = root.rstrip("/")
    names = sorted(p[len(root) :].lstrip("/") for p in fs.find(root))
    names = [n for n in names if n and not Path(n).name.startswith(".")]
    batches = [n for n in names if n.endswith(SUFFIXES)]
    return batches, [n for n in names if not n.endswith(SUFFIXES)]


def batch_date(name: str) -> date | None:
    """The last YYYY-MM-DD in the batch's path (a date=... partition or a file name)."""
    found = DATE.findall(name)
    if not found:
        return None
    try:
        return date(*(int(x) for x in found[-1]))
    except ValueError:
        return None


def in_window(names: list[str], window: WindowParams) -> tuple[list[str], dict[str, str]]:
    """The names inside the window, and the names left out with why (undated under `days`)."""
    if window.batches is not None:
        return names[-window.batches :], {}
    dated = {n: batch_date(n) for n in names}
    undated = {
        n: "no YYYY-MM-DD in its path; source.window.days needs one"
        for n, d in dated.items()
        if d is None
    }
    days = [d for d in dated.values() if d is not None]
    if not days:
        return [], undated
    assert window.days is not None
    start = max(days) - timedelta(days=window.days - 1)
    return [n for n in names if (d := dated[n]) is not None and d >= start], undated


def read_batch(data: bytes, name: str) -> pd.DataFrame:
    """A batch's rows from its bytes; unreadable files raise DataError naming the file."""
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{name}: not a readable {Path(name).suffix} file ({error})") from error


def canonical_table(frame: pd.DataFrame, data: DataParams) -> pd.DataFrame:
    """The model's columns with fixed types (float64 numerics, object categoricals, canonical
    string labels), so a row hashes the same (and keeps its side of the split) whatever
    file type brought it and whatever rows it is concatenated with."""
    out = pd.DataFrame(index=frame.index)
    for column in data.numeric_features:
        out[column] = frame[column].astype("float64")
    for column in data.categorical_features:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), np.nan)
    out[data.target] = canonical_labels(frame[data.target])
    return out.reset_index(drop=True)


@dataclass
class Assembled:
    table: pd.DataFrame
    batches: list[Batch]
    base: dict[str, Any]
    other_files: list[str]

    @property
    def included(self) -> list[Batch]:
        return [b for b in self.batches if b.status == INCLUDED]

    @property
    def quarantined(self) -> list[Batch]:
        return [b for b in self.batches if b.status == QUARANTINED]


def assemble(
    base_path: Path,
    url: str,
    window: WindowParams,
    data: DataParams,
    rules: DataValidationParams,
) -> Assembled:
    """Base rows + every valid batch in the window, with each batch's fate and hash."""
    base = read_table(base_path)
    missing = [c for c in [*data.features, data.target] if c not in base.columns]
    if missing:
        raise DataError(f"{base_path}: columns {missing} missing; run `dvc repro validate_data`")
    base_table = canonical_table(base, data)
    known = sorted(str(v) for v in base_table[data.target].dropna().unique())
    names, others = list_batches(url)
    chosen, left_out = in_window(names, window)
    fs, root = _fs(url)
    parts, batches = [base_table], []
    for name in names:
        batch = Batch(name=name, md5="", date=str(batch_date(name) or "") or None)
        batches.append(batch)
        if name not in chosen:
            if name in left_out:
                batch.problems.append({"check": "window.date", "message": left_out[name]})
            continue
        content = fs.cat_file(f"{root.rstrip('/')}/{name}")
        batch.md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
        try:
            frame = read_batch(content, name)
        except DataError as error:
            batch.status = QUARANTINED
            batch.problems.append({"check": "file.readable", "message": str(error)})
            continue
        batch.rows = len(frame)
        failures = validate_batch(frame, data, rules, known)
        if failures:
            batch.status = QUARANTINED
            batch.problems = [
                {"check": c.name, "column": c.column, "message": c.message} for c in failures
            ]
            continue
        batch.status = INCLUDED
        parts.append(canonical_table(frame, data))
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else base_table
    base_info = {"path": str(base_path), "md5": file_md5(base_path), "rows": len(base_table)}
    return Assembled(table, batches, base_info, others)


def write_assembled(
    result: Assembled, url: str, window: WindowParams, out_dir: Path, report: Path
) -> None:
    """The table and its lineage (only what was trained on) in out_dir; every batch's fate in
    `report` (a quarantined batch changes the report, never the table or the lineage)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result.table.to_parquet(out_dir / TABLE_FILE, index=False)
    lineage = {
        "rows": len(result.table),
        "base": result.base,
        "batches": [{"name": b.name, "md5": b.md5, "rows": b.rows} for b in result.included],
    }
    (out_dir / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2) + "\n")
    report.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "source": url,
        "window": window.model_dump(exclude_none=True),
        "rows": len(result.table),
        "included": len(result.included),
        "quarantined": len(result.quarantined),
        "batches": [asdict(b) for b in result.batches],
        "ignored_files": result.other_files,
    }
    report.write_text(json.dumps(summary, indent=2) + "\n")


def read_lineage(path: Path) -> dict[str, Any]:
    """lineage.json written by the assemble stage (empty lineage when there is none)."""
    if not path.is_file():
        return {"batches": []}
    return dict(json.loads(path.read_text()))


def read_batch_report(path: Path) -> dict[str, Any]:
    """reports/batches.json as the last assemble wrote it (nothing when it never ran)."""
    if not path.is_file():
        return {"batches": []}
    return dict(json.loads(path.read_text()))
