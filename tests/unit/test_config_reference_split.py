"""params.yaml parsing, reference bins, and the stratified split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.config import Params, load_params
from modelops.data import split
from modelops.errors import ParamsError
from modelops.reference import build_reference, numeric_bin_index


def test_params_errors_name_the_problem(tmp_path, repo_root) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["data"]["categorical_features"].append("Age")
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"numeric and categorical.*Age"):
        load_params(bad)
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["train"]["model"] = "xgboost"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"train\.model"):
        load_params(bad)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_split_is_stratified_seeded_and_sized(credit_frame: pd.DataFrame, params: Params) -> None:
    train, test = split(credit_frame, params.data, params.split)
    assert len(test) == pytest.approx(len(credit_frame) * params.split.test_size, abs=1)
    assert len(train) + len(test) == len(credit_frame)
    rate = (credit_frame.Status == "bad").mean()
    assert (train.Status == "bad").mean() == pytest.approx(rate, abs=0.002)
    assert (test.Status == "bad").mean() == pytest.approx(rate, abs=0.002)
    again, _ = split(credit_frame, params.data, params.split)
    pd.testing.assert_frame_equal(train, again)


def test_reference_bins_cover_training_data(credit_frame: pd.DataFrame, params: Params) -> None:
    features = credit_frame[params.data.features]
    reference = build_reference(
        features,
        params.data.numeric_features,
        params.data.categorical_features,
        np.linspace(0, 1, 50),
        10,
    )
    for name, ref in reference["features"].items():
        assert sum(ref["proportions"].values()) == pytest.approx(1.0, abs=1e-4), name
    income = reference["features"]["Income"]
    assert income["proportions"]["__missing__"] == pytest.approx(381 / 4454, abs=1e-4)
    assert len(income["edges"]) == 9
    home = reference["features"]["Home"]["proportions"]
    assert home["owner"] == pytest.approx(2107 / 4454, abs=1e-4) and home["__other__"] == 0.0
    edges = income["edges"]
    index = numeric_bin_index(np.array([edges[0], edges[0] + 1e-9, np.nan, 1e9]), edges)
    assert index.tolist() == [0, 1, len(edges) + 1, len(edges)]
