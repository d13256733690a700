"""Data validation: the real data passes; each kind of bad data fails naming column and problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.config import Params
from modelops.errors import DataError
from modelops.pipeline.data import read_raw
from modelops.pipeline.data_validation import validate_frame


def failures(frame: pd.DataFrame, params: Params) -> list[str]:
    return [c.message for c in validate_frame(frame, params.data, params.data_validation).failures]


def test_real_credit_data_passes(credit_frame: pd.DataFrame, params: Params) -> None:
    report = validate_frame(credit_frame, params.data, params.data_validation)
    assert report.passed, report.failures
    assert report.rows == 4454
    names = {c.name for c in report.checks}
    assert {
        "schema.column_present",
        "label.binary",
        "values.missing_rate",
        "values.range",
        "rows.duplicates",
        "rows.minimum",
        "label.class_balance",
    } <= names | {"schema.column_present"}


def test_missing_column_is_named(credit_frame: pd.DataFrame, params: Params) -> None:
    messages = failures(credit_frame.drop(columns=["Income"]), params)
    assert any("'Income'" in m and "missing" in m for m in messages), messages


def test_wrong_type_is_named(credit_frame: pd.DataFrame, params: Params) -> None:
    frame = credit_frame.copy()
    frame["Age"] = frame["Age"].astype(str) + " years"
    messages = failures(frame, params)
    assert any("'Age'" in m and "expected numbers" in m for m in messages), messages


def test_one_class_label_fails(credit_frame: pd.DataFrame, params: Params) -> None:
    frame = credit_frame[credit_frame["Status"] == "good"]
    messages = failures(frame, params)
    assert any("'Status'" in m and "2 label values" in m for m in messages), messages
    assert any("positive class 'bad'" in m for m in messages), messages


def test_nan_labels_fail(credit_frame: pd.DataFrame, params: Params) -> None:
    frame = credit_frame.copy()
    frame.loc[:9, "Status"] = np.nan
    messages = failures(frame, params)
    assert any("'Status'" in m and "10 missing label" in m for m in messages), messages


def test_out_of_range_and_missing_rate_and_duplicates(
    credit_frame: pd.DataFrame, params: Params
) -> None:
    frame = credit_frame.copy()
    frame.loc[:4, "Age"] = -3
    frame.loc[: len(frame) // 2, "Debt"] = np.nan
    frame = pd.concat([frame, frame.iloc[:400]], ignore_index=True)
    messages = failures(frame, params)
    assert any("'Age'" in m and "outside" in m for m in messages), messages
    assert any("'Debt'" in m and "missing" in m for m in messages), messages
    assert any("duplicated" in m for m in messages), messages


def test_too_few_rows_and_imbalance(credit_frame: pd.DataFrame, params: Params) -> None:
    frame = pd.concat(
        [
            credit_frame[credit_frame.Status == "good"].head(300),
            credit_frame[credit_frame.Status == "bad"].head(5),
        ]
    )
    messages = failures(frame, params)
    assert any("rows: 305 found" in m for m in messages), messages
    assert any("minority class share" in m for m in messages), messages


def test_empty_and_headerless_files_raise(tmp_path, params: Params) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_raw(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="no columns"):
        read_raw(blank)
    with pytest.raises(DataError, match="file not found"):
        read_raw(tmp_path / "absent.csv")


def test_header_only_file_fails_on_rows(
    tmp_path, credit_frame: pd.DataFrame, params: Params
) -> None:
    path = tmp_path / "header.csv"
    credit_frame.head(0).to_csv(path, index=False)
    messages = failures(read_raw(path), params)
    assert any("rows: 0 found" in m for m in messages), messages
