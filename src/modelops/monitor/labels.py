"""Labels that arrive later, joined with the prediction logs by `request_id` and `row`.

The one label reader and the one join, for the AUC guard (monitor/auc_guard.py) and for
`modelops feedback` (monitor/feedback.py writes the join as a labeled batch). A label file
(CSV or parquet; a folder is read as every such file in it and below) holds `request_id`,
`row`, `label` and, optionally, `labeled_at`. Labels are compared in canonical spelling
(`pipeline.data.canonical_labels`: "bad", 1, True, "true" ...).

Nothing is dropped silently: every label is matched to one logged prediction, unmatched (no
such prediction in the logs read), blank, or a duplicate of a label given for that prediction
(the latest `labeled_at` wins; duplicates with another label are counted as conflicting); a
prediction logged twice is counted (the first line kept), as are predictions with no label yet
and log lines without request_id/row (written before the log had them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modelops.errors import DataError
from modelops.pipeline.data import canonical_labels

KEY = ["request_id", "row"]
LABEL = "label"
LABELED_AT = "labeled_at"
LABEL_COLUMNS = [*KEY, LABEL, LABELED_AT]


@dataclass
class Feedback:
    """Logged predictions that got a label, and the count of every label and prediction."""

    frame: pd.DataFrame  # the log's columns (score, environment, features ...) + label
    unmatched_frame: pd.DataFrame  # the latest label of each key no logged prediction has
    labels: int  # label rows read
    matched: int  # logged predictions that got a label
    unmatched_labels: int  # labels whose (request_id, row) no log line has
    duplicate_labels: int  # extra label rows for a (request_id, row) already labeled
    conflicting_labels: int  # of those, rows whose label differs from the one kept
    missing_labels: int  # label rows with a blank label
    predictions: int  # log lines read
    duplicate_predictions: int  # log lines repeating a (request_id, row)
    unlabeled_predictions: int  # predictions no label has reached yet
    unkeyed_predictions: int = 0  # log lines without request_id or row
    files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON reports)."""
        names = [
            "labels", "matched", "unmatched_labels", "duplicate_labels", "conflicting_labels",
            "missing_labels", "predictions", "duplicate_predictions", "unlabeled_predictions",
            "unkeyed_predictions",
        ]  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def summary(self) -> str:
        return (
            f"{self.labels} labels: {self.matched} matched a logged prediction, "
            f"{self.unmatched_labels} matched none, {self.duplicate_labels} duplicates "
            f"({self.conflicting_labels} with a different label; the latest labeled_at kept)"
            + (f", {self.missing_labels} blank" if self.missing_labels else "")
            + (
                f"; {self.duplicate_predictions} predictions logged twice"
                if self.duplicate_predictions
                else ""
            )
            + (
                f"; {self.unkeyed_predictions} log lines without request_id/row"
                if self.unkeyed_predictions
                else ""
            )
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
    """One row per labeled prediction: the log row with its (latest) label, and the counts."""
    labels = labels.assign(**{LABEL: canonical_labels(labels[LABEL])})
    blank = labels[LABEL].isna()
    usable = labels[~blank]
    if LABELED_AT in usable.columns:
        at = pd.to_datetime(usable[LABELED_AT], utc=True, errors="coerce")
        usable = usable.assign(_at=at).sort_values("_at", kind="stable", na_position="first")
        usable = usable.drop(columns="_at")
    latest = usable.drop_duplicates(KEY, keep="last")
    given = usable.set_index(KEY)[LABEL]
    conflicting = int((given != latest.set_index(KEY)[LABEL].reindex(given.index)).sum())

    logs = logs.reindex(columns=[*logs.columns, *(c for c in KEY if c not in logs.columns)])
    keyed = logs.dropna(subset=KEY)
    keyed = keyed.assign(
        row=pd.to_numeric(keyed["row"]).astype("int64"),
        request_id=keyed["request_id"].astype(str),
    )
    logged = keyed.drop_duplicates(KEY, keep="first")
    label_columns = [c for c in LABEL_COLUMNS if c in latest.columns]
    joined = logged.merge(latest[label_columns], on=KEY, how="inner", validate="one_to_one")
    found = latest.merge(logged[KEY], on=KEY, how="left", indicator=True)["_merge"] == "both"
    unmatched = latest.loc[~found.to_numpy(), label_columns].reset_index(drop=True)
    return Feedback(
        frame=joined.reset_index(drop=True),
        unmatched_frame=unmatched,
        labels=len(labels),
        matched=len(joined),
        unmatched_labels=len(unmatched),
        duplicate_labels=len(usable) - len(latest),
        conflicting_labels=conflicting,
        missing_labels=int(blank.sum()),
        predictions=len(logs),
        duplicate_predictions=len(keyed) - len(logged),
        unlabeled_predictions=len(logged) - len(joined),
        unkeyed_predictions=len(logs) - len(keyed),
        files=files,
    )
