"""The data source: which batches the window takes, per-batch validation and quarantine, the
assembled table and its lineage, and what `modelops retrain` reports as new."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from modelops.cli.retrain import _inside, batch_changes
from modelops.config import Params, WindowParams
from modelops.pipeline.batches import (
    INCLUDED,
    LINEAGE_FILE,
    QUARANTINED,
    TABLE_FILE,
    assemble,
    batch_date,
    in_window,
    list_batches,
    write_assembled,
)
from tests.conftest import REPO_ROOT

NAMES = [
    "2026-11-02.csv",
    "2026-11-20.parquet",
    "date=2026-11-30/part-0.csv",
    "date=2026-12-01/part-0.parquet",
]


def test_the_last_n_batches_in_path_order() -> None:
    chosen, left_out = in_window(NAMES, WindowParams(batches=2))
    assert chosen == NAMES[2:] and left_out == {}
    assert in_window(NAMES, WindowParams(batches=10))[0] == NAMES


def test_a_day_window_counts_back_from_the_newest_batch_not_the_clock() -> None:
    chosen, _ = in_window(NAMES, WindowParams(days=12))  # 2026-11-20 .. 2026-12-01
    assert chosen == NAMES[1:]
    assert in_window(NAMES, WindowParams(days=1))[0] == NAMES[3:]
    assert batch_date("date=2026-12-01/x-2026-11-05.csv").isoformat() == "2026-11-05"


def test_an_undated_batch_under_a_day_window_is_left_out_with_the_reason() -> None:
    chosen, left_out = in_window([*NAMES, "extra.csv"], WindowParams(days=400))
    assert chosen == NAMES
    assert "no YYYY-MM-DD" in left_out["extra.csv"]


def test_the_window_takes_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        WindowParams(batches=3, days=30)
    with pytest.raises(ValueError, match="exactly one"):
        WindowParams()


def rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    sample = frame.sample(n, random_state=seed).reset_index(drop=True)
    return sample.assign(Amount=sample["Amount"] + 3 + seed)


@pytest.fixture
def source(tmp_path: Path, credit_frame: pd.DataFrame) -> Path:
    folder = tmp_path / "source"
    (folder / "date=2026-12-01").mkdir(parents=True)
    rows(credit_frame, 300, 1).to_csv(folder / "2026-11-30-a.csv", index=False)
    good = rows(credit_frame, 200, 2)
    good["Status"] = good["Status"].map({"bad": True, "good": False})  # booleans: other spelling
    good.to_parquet(folder / "date=2026-12-01/b.parquet", index=False)
    bad = rows(credit_frame, 100, 3)
    bad.loc[:2, "Age"] = 500
    bad.loc[5:6, "Status"] = "unknown"
    bad.to_csv(folder / "2026-12-02-c.csv", index=False)
    (folder / "2026-12-03-d.csv").write_text("not,a\n\x00\x01broken")
    (folder / "README.md").write_text("batches land here")
    return folder


def test_bad_batches_are_quarantined_by_file_column_and_problem(
    source: Path, params: Params
) -> None:
    base = REPO_ROOT / params.data.path
    result = assemble(
        base, str(source), WindowParams(batches=10), params.data, params.data_validation
    )
    fates = {b.name: b.status for b in result.batches}
    assert fates == {
        "2026-11-30-a.csv": INCLUDED,
        "2026-12-02-c.csv": QUARANTINED,
        "2026-12-03-d.csv": QUARANTINED,
        "date=2026-12-01/b.parquet": QUARANTINED,  # True/False are not the base's bad/good
    }
    (c,) = [b for b in result.batches if b.name == "2026-12-02-c.csv"]
    problems = {(p["check"], p["column"]) for p in c.problems}
    assert problems == {("values.range", "Age"), ("label.known", "Status")}
    assert any("3 value(s) outside [16.0, 110.0]" in p["message"] for p in c.problems)
    (d,) = [b for b in result.batches if b.name == "2026-12-03-d.csv"]
    assert d.status == QUARANTINED and d.problems
    assert result.other_files == ["README.md"]
    assert len(result.table) == 4454 + 300


def test_labels_in_any_spelling_join_a_table_with_the_same_spelling(
    tmp_path: Path, credit_frame: pd.DataFrame, params: Params
) -> None:
    """A base with 0/1 labels takes batches whose labels are booleans, floats or strings."""
    data = params.data.model_copy(update={"positive_class": "1"})
    base = credit_frame.assign(Status=(credit_frame["Status"] == "bad").astype(int))
    base.to_csv(tmp_path / "base.csv", index=False)
    folder = tmp_path / "source"
    folder.mkdir()
    for name, spelling in [("a.parquet", bool), ("b.csv", float), ("c.csv", str)]:
        batch = rows(base, 50, len(name)).assign(Status=lambda f, s=spelling: f.Status.astype(s))
        if name.endswith(".csv"):
            batch.to_csv(folder / name, index=False)
        else:
            batch.to_parquet(folder / name, index=False)
    batch_label = pd.read_parquet(folder / "a.parquet")["Status"]
    assert batch_label.dtype == bool
    result = assemble(
        tmp_path / "base.csv", str(folder), WindowParams(batches=5), data, params.data_validation
    )
    assert [b.status for b in result.batches] == ["included"] * 3, result.batches
    assert sorted(result.table["Status"].unique()) == ["0", "1"]
    assert len(result.table) == len(base) + 150


def test_the_table_and_lineage_change_only_with_what_is_trained_on(
    tmp_path: Path, source: Path, params: Params
) -> None:
    base, window = REPO_ROOT / params.data.path, WindowParams(batches=10)

    def write(out: str) -> tuple[bytes, dict[str, object], dict[str, object]]:
        result = assemble(base, str(source), window, params.data, params.data_validation)
        write_assembled(result, str(source), window, tmp_path / out, tmp_path / f"{out}.json")
        table = (tmp_path / out / TABLE_FILE).read_bytes()
        lineage = json.loads((tmp_path / out / LINEAGE_FILE).read_text())
        return table, lineage, json.loads((tmp_path / f"{out}.json").read_text())

    table, lineage, report = write("one")
    (source / "2026-12-09-e.csv").write_text("Age\n1\n")  # another bad batch
    table2, lineage2, report2 = write("two")
    assert table2 == table and lineage2 == lineage
    assert report2["quarantined"] == report["quarantined"] + 1
    assert [b["name"] for b in lineage["batches"]] == ["2026-11-30-a.csv"]
    assert len(lineage["batches"][0]["md5"]) == 32 and lineage["batches"][0]["rows"] == 300
    frame = pd.read_parquet(tmp_path / "one" / TABLE_FILE)
    assert list(frame.columns) == [*params.data.features, params.data.target]
    assert all(frame[c].dtype == "float64" for c in params.data.numeric_features)


def test_a_missing_source_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="create the folder"):
        list_batches(str(tmp_path / "nowhere"))


def test_retrain_reports_new_quarantined_and_left_batches() -> None:
    before = {
        "batches": [
            {"name": "a", "md5": "1", "status": "included"},
            {"name": "b", "md5": "2", "status": "included"},
            {"name": "q", "md5": "3", "status": "quarantined"},
        ]
    }
    after = {
        "batches": [
            {"name": "a", "md5": "1", "status": "outside_window"},
            {"name": "b", "md5": "2", "status": "included"},
            {"name": "c", "md5": "4", "status": "included"},
            {"name": "q", "md5": "3", "status": "quarantined"},
            {"name": "r", "md5": "5", "status": "quarantined"},
        ]
    }
    assert batch_changes(before, after) == {"new": ["c"], "quarantined": ["r"], "left": ["a"]}
    assert batch_changes(after, after) == {"new": [], "quarantined": [], "left": []}


def test_a_source_inside_the_repository_is_committed_with_the_lock(tmp_path: Path) -> None:
    (tmp_path / "data/incoming").mkdir(parents=True)
    assert _inside(str(tmp_path / "data/incoming"), tmp_path)
    assert not _inside(str(tmp_path.parent), tmp_path)
    assert not _inside("s3://bucket/batches", tmp_path)
