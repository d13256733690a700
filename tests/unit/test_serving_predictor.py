"""The fast path gives the sklearn pipeline's probabilities (to 1e-6) on the real test split,
including missing values and unseen categories, for both estimators params.yaml offers; and
the service falls back to sklearn when the fast path cannot replay a pipeline or disagrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from modelops.config import Params
from modelops.pipeline.data import coerce_features, labels
from modelops.pipeline.train import fit
from serving.model import ModelCard, load_pipeline, read_card
from serving.predictor import (
    TOLERANCE,
    Batch,
    FastPredictor,
    SklearnPredictor,
    _OnnxTrees,
    build_predictor,
    hgb_to_onnx,
    probe_batch,
)


@pytest.fixture(scope="module")
def card(trained_model: dict[str, Any]) -> ModelCard:
    return read_card(Path(trained_model["model_dir"]))


@pytest.fixture(scope="module")
def pipeline(card: ModelCard) -> Any:
    return load_pipeline(card)


@pytest.fixture(scope="module")
def test_features(split_frames: tuple[pd.DataFrame, pd.DataFrame], params: Params) -> pd.DataFrame:
    """The real test split, plus copies of its rows with unseen categories, missing
    categories and missing numerics, as coerce_features (training's reader) types them."""
    test = split_frames[1].copy()
    variants = [test]
    for column in params.data.categorical_features:
        unseen = test.head(40).copy()
        unseen[column] = f"never-seen-{column.lower()}"
        missing = test.iloc[40:80].copy()
        missing[column] = None
        variants += [unseen, missing]
    holes = test.iloc[80:120].copy()
    holes[params.data.numeric_features[::2]] = np.nan
    variants.append(holes)
    return coerce_features(pd.concat(variants, ignore_index=True), params.data)


def records_of(features: pd.DataFrame) -> list[dict[str, Any]]:
    """What the request schema hands the predictor: Python values, None for missing."""
    out = features.astype(object).where(features.notna(), None).to_dict("records")
    return [{k: (float(v) if isinstance(v, int | float) else v) for k, v in r.items()} for r in out]


def test_the_comparison_covers_missing_and_unseen_values(
    test_features: pd.DataFrame, card: ModelCard, params: Params
) -> None:
    known = {
        f: set(card.reference["features"][f]["proportions"])
        for f in params.data.categorical_features
    }
    unseen = sum((~test_features[f].isin(known[f]) & test_features[f].notna()).sum() for f in known)
    assert unseen >= 160
    assert test_features[params.data.categorical_features].isna().any(axis=1).sum() >= 160
    assert test_features[params.data.numeric_features].isna().any(axis=1).sum() >= 100


def test_onnx_fast_path_matches_sklearn_on_the_test_split(
    card: ModelCard, pipeline: Any, test_features: pd.DataFrame
) -> None:
    fast = FastPredictor.from_pipeline(pipeline, card)
    assert fast.kind == "onnx"
    expected = pipeline.predict_proba(test_features)[:, 1]
    got = fast.scores(Batch.from_records(records_of(test_features), card))
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOLERANCE
    assert len(np.unique(np.round(got, 3))) > 100  # real, varied scores, not a constant


def test_single_rows_score_like_the_batch(
    card: ModelCard, pipeline: Any, test_features: pd.DataFrame
) -> None:
    fast = FastPredictor.from_pipeline(pipeline, card)
    records = records_of(test_features.sample(50, random_state=1))
    batch = fast.scores(Batch.from_records(records, card))
    one_by_one = [fast.scores(Batch.from_records([r], card))[0] for r in records]
    np.testing.assert_allclose(one_by_one, batch, atol=1e-12)


def test_numpy_fast_path_matches_logistic_regression(
    card: ModelCard,
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
    test_features: pd.DataFrame,
) -> None:
    lr_params = params.model_copy(deep=True)
    lr_params.train.model = "logistic_regression"
    lr, *_ = fit(lr_params, split_frames[0])
    fast = FastPredictor.from_pipeline(lr, card)
    assert fast.kind == "numpy"
    got = fast.scores(Batch.from_records(records_of(test_features), card))
    assert np.max(np.abs(got - lr.predict_proba(test_features)[:, 1])) <= TOLERANCE


def test_onnx_trees_send_missing_values_where_sklearn_does(card: ModelCard, pipeline: Any) -> None:
    """The imputer normally removes NaN before the trees; the rebuilt trees must still route
    it as HistGradientBoosting does (missing_go_to_left)."""
    prep, estimator = pipeline.steps[0][1], pipeline.steps[-1][1]
    x = prep.transform(probe_batch(card).frame(card))
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.2] = np.nan
    trees = _OnnxTrees(hgb_to_onnx(estimator, x.shape[1]))
    np.testing.assert_allclose(trees.raw(x), estimator._raw_predict(x)[:, 0], atol=1e-5)


def test_sklearn_predictor_scores_the_frame_training_would_see(
    card: ModelCard, pipeline: Any, test_features: pd.DataFrame
) -> None:
    records = records_of(test_features)
    frame = Batch.from_records(records, card).frame(card)
    pd.testing.assert_frame_equal(frame, test_features.reset_index(drop=True), check_dtype=True)
    got = SklearnPredictor(pipeline, card).scores(Batch.from_records(records, card))
    np.testing.assert_array_equal(got, pipeline.predict_proba(test_features)[:, 1])


def test_build_predictor_prefers_the_fast_path_and_says_why(card: ModelCard, pipeline: Any) -> None:
    predictor, note = build_predictor(pipeline, card)
    assert predictor.kind == "onnx"
    assert "matches sklearn" in note
    predictor, note = build_predictor(pipeline, card, fast=False)
    assert predictor.kind == "sklearn" and "turned off" in note


def test_unsupported_estimator_falls_back_to_sklearn(
    card: ModelCard, pipeline: Any, split_frames: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    train = split_frames[0]
    prep = pipeline.steps[0][1]
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(prep.transform(coerce_features(train, params.data)), labels(train, params.data))
    other = Pipeline([("prep", prep), ("model", forest)])
    predictor, note = build_predictor(other, card)
    assert predictor.kind == "sklearn"
    assert "RandomForestClassifier" in note


def test_a_fast_path_that_disagrees_is_not_used(
    card: ModelCard, pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = FastPredictor.scores
    monkeypatch.setattr(FastPredictor, "scores", lambda self, b: original(self, b) + 1e-4)
    predictor, note = build_predictor(pipeline, card)
    assert predictor.kind == "sklearn"
    assert "differs by 0.0001" in note


def test_probe_rows_touch_every_bin_edge_and_category(card: ModelCard) -> None:
    probe = probe_batch(card)
    frame = probe.frame(card)
    for feature in card.numeric:
        values = set(frame[feature].dropna())
        assert set(card.reference["features"][feature]["edges"]) <= values
        assert frame[feature].isna().any()
    for feature in card.categorical:
        known = {k for k in card.reference["features"][feature]["proportions"] if k[:2] != "__"}
        assert known <= set(frame[feature].dropna())
        assert frame[feature].isna().any()
