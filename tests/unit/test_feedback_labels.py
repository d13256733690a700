"""Production labels fed back (the join of the service's own log lines with late labels), and
labels of any type: strings, 0/1 integers and booleans mean the same to params, the training
labels, validation, the gate's metrics and the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.config import DataParams, Params, canonical_label
from modelops.errors import DataError
from modelops.monitor.feedback import batch_name, labeled_batch, write_batch
from modelops.monitor.labels import Feedback, join_feedback, read_labels
from modelops.monitor.predlogs import read_logs
from modelops.pipeline.data import labels
from modelops.pipeline.data_validation import validate_frame
from modelops.pipeline.evaluate import metrics
from modelops.pipeline.train import fit
from serving.predlog import Entry, PredictionLog

DATA = DataParams(
    path="x.csv",
    target="Status",
    positive_class="bad",
    numeric_features=["Age"],
    categorical_features=["Home"],
)


def log(path: Path, requests: dict[str, list[dict[str, object]]]) -> None:
    """Prediction log lines written by the service's writer itself."""
    writer = PredictionLog(str(path), {"model_version": "3"}, flush_seconds=60)
    writer.start()
    for rid, records in requests.items():
        scores = [0.4] * len(records)
        writer.submit(
            Entry(rid, 1_800_000_000.0, "/predict", records, scores, ["n"] * len(records))
        )
    writer.close()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Day partitions (date=YYYY-MM-DD/*.jsonl), one request logged twice (a mirrored one)."""
    folder = tmp_path / "logs"
    log(folder / "date=2026-12-01/predictions-a.jsonl", {"r1": [{"Age": 30, "Home": "rent"}] * 2})
    log(folder / "date=2026-12-02/predictions-a.jsonl", {"r2": [{"Age": 41, "Home": None}]})
    log(folder / "date=2026-12-02/predictions-b.jsonl", {"r2": [{"Age": 41, "Home": None}]})
    (folder / "date=2026-12-02/notes.txt").write_text("not a log")
    return folder


def join(logs: Path, labels: Path) -> Feedback:
    """The one join, as `modelops feedback` runs it."""
    return join_feedback(read_logs(logs)[0], *read_labels(labels))


def labels_file(tmp_path: Path, rows: list[tuple[object, ...]], parquet: bool = False) -> Path:
    frame = pd.DataFrame(rows, columns=["request_id", "row", "label", "labeled_at"])
    path = tmp_path / ("labels.parquet" if parquet else "labels.csv")
    frame.to_parquet(path) if parquet else frame.to_csv(path, index=False)
    return path


def test_join_counts_every_label_and_keeps_the_latest(tmp_path: Path, logs: Path) -> None:
    path = labels_file(
        tmp_path,
        [
            ("r1", 0, "good", "2026-12-03T09:00:00Z"),
            ("r1", 0, "bad", "2026-12-04T09:00:00Z"),  # a correction: the latest wins
            ("r1", 1, "good", "2026-12-03"),
            ("r2", 0, "bad", "2026-12-03"),
            ("r2", 0, "bad", "2026-12-03"),  # sent twice, same answer
            ("r9", 0, "bad", "2026-12-03"),  # no prediction logged for it (yet)
            ("r1", 5, None, "2026-12-03"),  # an empty label
        ],
    )
    predictions, files, _ = read_logs(logs)
    assert len(files) == 3 and len(predictions) == 4
    c = join_feedback(predictions, *read_labels(path))
    assert (c.labels, c.matched, c.unmatched_labels, c.missing_labels) == (7, 3, 1, 1)
    assert (c.duplicate_labels, c.conflicting_labels) == (2, 1)
    assert (c.predictions, c.duplicate_predictions, c.unlabeled_predictions) == (4, 1, 0)
    assert c.unmatched_frame["request_id"].tolist() == ["r9"]
    batch = labeled_batch(c, DATA).sort_values(["request_id", "row"]).reset_index(drop=True)
    assert batch["Status"].tolist() == ["bad", "good", "bad"]
    assert batch["Age"].tolist() == [30, 30, 41]
    assert list(batch.columns[:3]) == ["Age", "Home", "Status"]
    assert {"request_id", "row", "labeled_at", "model_version"} <= set(batch.columns)


def test_one_log_file_and_parquet_labels_of_booleans(tmp_path: Path, logs: Path) -> None:
    one = logs / "date=2026-12-01/predictions-a.jsonl"
    path = labels_file(tmp_path, [("r1", 0, True, "2026-12-03"), ("r1", 1, False, "x")], True)
    data = DATA.model_copy(update={"positive_class": "1"})
    batch = labeled_batch(join(one, path), data)
    assert batch["Status"].tolist() == ["1", "0"]
    assert labels(batch, data).tolist() == [1, 0]


def test_written_batch_lands_in_the_source_with_a_sortable_dated_name(
    tmp_path: Path, logs: Path
) -> None:
    path = labels_file(tmp_path, [("r2", 0, "bad", "2026-12-03")])
    batch = labeled_batch(join(logs, path), DATA)
    name = batch_name()
    assert name.startswith("feedback-20") and name.endswith("Z.parquet")
    written = write_batch(batch, str(tmp_path / "source"), name)
    assert pd.read_parquet(written)["Status"].tolist() == ["bad"]
    with pytest.raises(DataError, match="exists"):
        write_batch(batch, str(tmp_path / "source"), name)


def test_bad_inputs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no \*\.jsonl"):
        read_logs(tmp_path)
    (tmp_path / "x.csv").write_text("request_id,label\nr1,bad\n")
    with pytest.raises(DataError, match=r"no column\(s\) \['row'\]"):
        read_labels(tmp_path / "x.csv")
    (tmp_path / "p.jsonl").write_text('{"score": 0.3}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:1: no 'features' object"):
        read_logs(tmp_path / "p.jsonl")
    (tmp_path / "p.jsonl").write_text('{"features": {"Age": 1}}\n{"features": {"Ag')
    predictions, _, notes = read_logs(tmp_path / "p.jsonl")
    assert len(predictions) == 1 and notes == [
        f"{tmp_path / 'p.jsonl'}:2: incomplete last line skipped"
    ]
    feedback = join_feedback(
        predictions, *read_labels(labels_file(tmp_path, [("r1", 0, "bad", "x")]))
    )
    assert (feedback.unkeyed_predictions, feedback.matched, feedback.unmatched_labels) == (1, 0, 1)
    (tmp_path / "p.jsonl").write_text('{"features": {"Ag\n{"features": {"Age": 1}}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:1: not valid JSON"):
        read_logs(tmp_path / "p.jsonl")


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("bad", "bad"),
        (" bad ", "bad"),
        (1, "1"),
        (1.0, "1"),
        ("1.0", "1"),
        (np.int64(0), "0"),
        (True, "1"),
        ("TRUE", "1"),
        ("false", "0"),
        (np.bool_(False), "0"),
        (float("nan"), None),
    ],
)
def test_one_spelling_per_label(value: object, canonical: str | None) -> None:
    assert canonical_label(value) == canonical


@pytest.mark.parametrize("positive", [1, True, "1", "true"])
def test_params_accept_a_positive_class_of_any_type(positive: object, params: Params) -> None:
    raw = params.data.model_dump() | {"positive_class": positive}
    assert DataParams.model_validate(raw).positive_class == "1"


def test_gate_metrics_and_training_agree_whatever_the_label_type(
    credit_frame: pd.DataFrame, params: Params
) -> None:
    """The same data as strings, as 0/1 (with a gap: floats), and as booleans: the same
    labels, validation verdict, model and AUC."""
    quick = params.model_copy(
        update={
            "train": params.train.model_copy(update={"model": "logistic_regression"}),
            "evaluate": params.evaluate.model_copy(update={"bootstrap_rounds": 20}),
        }
    )
    credit_frame = credit_frame.head(1500)
    is_bad = credit_frame["Status"] == "bad"
    spellings: list[tuple[object, pd.DataFrame]] = [
        ("bad", credit_frame),
        (1, credit_frame.assign(Status=is_bad.astype(int))),
        ("1.0", credit_frame.assign(Status=is_bad.astype(float))),
        (True, credit_frame.assign(Status=is_bad)),
    ]
    aucs = []
    for positive, frame in spellings:
        data = DataParams.model_validate(quick.data.model_dump() | {"positive_class": positive})
        p = quick.model_copy(update={"data": data})
        assert labels(frame, data).tolist() == is_bad.astype(int).tolist()
        report = validate_frame(frame, data, p.data_validation)
        assert report.passed, report.failures
        model, features, y, _ = fit(p, frame)
        aucs.append(metrics(y, model.predict_proba(features)[:, 1], p)["roc_auc"])
    assert len(aucs) == 4 and max(aucs) - min(aucs) < 1e-9, aucs
