"""Labels that arrive later, joined with the prediction logs by `request_id` and `row`.

A label file (CSV or parquet; a folder is read as every such file in it and below) holds
`request_id`, `row`, `label` and, optionally, `labeled_at`. Every label is accounted for:
matched to one logged prediction, unmatched (no such prediction in the logs read), or a
duplicate of a label already given for that prediction (the latest `labeled_at` wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modelops.errors import DataError

KEY = ["request_id", "row"]
LABEL = "label"
LABELED_AT = "labeled_at"


@dataclass
class Feedback:
    """Logged predictions that got a label, and the count of every label that did not."""

    frame: pd.DataFrame  # the log's columns (score, environment, model_version, ...) + label
    labels: int
    matched: int
    unmatched: int
    duplicates: int
    conflicting: int  # duplicates whose label differs from the one kept
    blank: int = 0  # label rows with an empty label
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.labels} labels: {self.matched} matched a logged prediction, "
            f"{self.unmatched} matched none, {self.duplicates} duplicates "
            f"({self.conflicting} with a different label; the latest labeled_at kept)"
            + (f", {self.blank} blank" if self.blank else "")
        )


def read_labels(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The label rows of a file or folder, and the files read."""
    from modelops.monitor.inputs import TABLE_SUFFIXES, read_table

    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TABLE_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    if not files or not files[0].exists():
        raise DataError(f"{path}: no label file (*.csv, *.parquet); pass the labels' folder")
    frame = pd.concat([read_table(f) for f in files], ignore_index=True)
    missing = [c for c in [*KEY, LABEL] if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no column(s) {missing} (it has {sorted(map(str, frame.columns))}); a "
            "label file holds request_id, row, label and, optionally, labeled_at"
        )
    rows = pd.to_numeric(frame["row"], errors="coerce")
    bad = frame.index[rows.isna() | (rows < 0) | (rows % 1 != 0)]
    if len(bad):
        raise DataError(
            f"{path}: 'row' must be the row's index in its request (0, 1, ...); "
            f"{len(bad)} label(s) are not, e.g. {frame.loc[bad[0], 'row']!r}"
        )
    frame["row"] = rows.astype("int64")
    frame["request_id"] = frame["request_id"].astype(str)
    return frame, [str(f) for f in files]


def join_feedback(logs: pd.DataFrame, labels: pd.DataFrame, files: list[str]) -> Feedback:
    """One row per labeled prediction: the log row with its (latest) label."""
    blank = int(labels[LABEL].isna().sum())
    labels = labels[labels[LABEL].notna()].copy()
    if LABELED_AT in labels.columns:
        labels["_at"] = pd.to_datetime(labels[LABELED_AT], utc=True, errors="coerce")
        labels = labels.sort_values("_at", kind="stable", na_position="first")
    latest = labels.drop_duplicates(KEY, keep="last")
    kept = latest.set_index(KEY)[LABEL].astype(str)
    given = labels.set_index(KEY)[LABEL].astype(str)
    conflicting = int((given != kept.reindex(given.index)).sum())
    logged = logs.dropna(subset=KEY)  # lines written before the log had request_id and row
    logged = logged.assign(row=pd.to_numeric(logged["row"]).astype("int64"))
    logged = logged.assign(request_id=logged["request_id"].astype(str))
    logged = logged.drop_duplicates(KEY, keep="last")
    joined = logged.merge(latest[[*KEY, LABEL]], on=KEY, how="inner", validate="one_to_one")
    return Feedback(
        frame=joined.reset_index(drop=True),
        labels=len(labels),
        matched=len(joined),
        unmatched=len(latest) - len(joined),
        duplicates=len(labels) - len(latest),
        conflicting=conflicting,
        blank=blank,
        files=files,
    )
