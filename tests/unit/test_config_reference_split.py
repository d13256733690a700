"""params.yaml parsing, reference bins, and the stratified split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.config import Params, load_params
from modelops.errors import ParamsError
from modelops.pipeline.data import split
from modelops.registry.reference import build_reference, numeric_bin_index


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


def test_split_is_seeded_sized_and_balanced(credit_frame: pd.DataFrame, params: Params) -> None:
    train, test = split(credit_frame, params.data, params.split)
    assert len(train) + len(test) == len(credit_frame)
    assert len(test) / len(credit_frame) == pytest.approx(params.split.test_size, abs=0.02)
    rate = (credit_frame.Status == "bad").mean()
    assert (train.Status == "bad").mean() == pytest.approx(rate, abs=0.01)
    assert (test.Status == "bad").mean() == pytest.approx(rate, abs=0.02)
    again, _ = split(credit_frame, params.data, params.split)
    pd.testing.assert_frame_equal(train, again)
    reseeded = params.split.model_copy(update={"seed": params.split.seed + 1})
    other, _ = split(credit_frame, params.data, reseeded)
    assert not other.equals(train)


def test_split_membership_is_stable_when_data_grows(
    credit_frame: pd.DataFrame, params: Params
) -> None:
    _, test = split(credit_frame, params.data, params.split)
    grown = pd.concat([credit_frame, credit_frame.sample(300, random_state=2).assign(Age=99)])
    new_train, new_test = split(grown.reset_index(drop=True), params.data, params.split)
    key = list(credit_frame.columns)
    old_test = set(map(tuple, test[key].astype(str).to_numpy()))
    moved = [row for row in map(tuple, new_train[key].astype(str).to_numpy()) if row in old_test]
    assert moved == []
    assert len(new_test) > len(test)


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
