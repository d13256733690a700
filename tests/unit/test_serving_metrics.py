"""The metrics contract (names, labels, buckets) that canary analysis and monitoring query,
and drift bins that count exactly as the reference bins saved with the model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops.config import Params
from modelops.pipeline.data import coerce_features
from modelops.registry.reference import MISSING, OTHER, bin_labels, numeric_bin_index
from serving.metrics import (
    LATENCY_BUCKETS,
    SCORE_BUCKETS,
    SCORE_FEATURE,
    DriftBins,
    ServiceMetrics,
)
from serving.model import ModelCard, read_card
from serving.predictor import Batch

CONTRACT = {
    "modelops_http_requests": ("counter", {"route", "method", "status"}),
    "modelops_http_request_duration_seconds": ("histogram", {"route"}),
    "modelops_prediction_score": ("histogram", set()),
    "modelops_predictions": ("counter", {"decision"}),
    "modelops_feature_bin": ("counter", {"feature", "bin"}),
    "modelops_feature_reference_proportion": ("gauge", {"feature", "bin"}),
    "modelops_model_info": (
        "gauge",
        {"model_name", "model_version", "run_id", "git_commit", "image_tag"},
    ),
    "modelops_model_ready": ("gauge", set()),
}


@pytest.fixture(scope="module")
def card(trained_model: dict[str, Any]) -> ModelCard:
    return read_card(Path(trained_model["model_dir"]))


@pytest.fixture(scope="module")
def test_batch(
    split_frames: tuple[pd.DataFrame, pd.DataFrame], params: Params, card: ModelCard
) -> Batch:
    test = split_frames[1].copy()
    test.loc[:9, "Job"] = "astronaut"  # unseen category -> __other__
    features = coerce_features(test, params.data)
    records = features.astype(object).where(features.notna(), None).to_dict("records")
    return Batch.from_records(records, card)


def families(metrics: ServiceMetrics) -> dict[str, Any]:
    text = metrics.render()[0].decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metric_names_types_and_labels(card: ModelCard) -> None:
    metrics = ServiceMetrics()
    DriftBins(card, metrics)
    metrics.info.labels(card.name, card.version, card.run_id, "abc", "img:1").set(1)
    metrics.observe_request("/predict", "POST", 200, 0.003)
    metrics.observe_scores([0.7], 1)
    found = families(metrics)
    for name, (kind, label_names) in CONTRACT.items():
        assert found[name].type == kind, name
        samples = [s for s in found[name].samples if not s.name.endswith("_created")]
        assert samples, name
        for sample in samples:
            assert set(sample.labels) - {"le"} == label_names, (name, sample.labels)


def test_histogram_buckets_are_the_contract() -> None:
    assert LATENCY_BUCKETS == (
        0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5,
    )  # fmt: skip
    assert tuple(round(0.05 * i, 2) for i in range(1, 21)) == SCORE_BUCKETS
    metrics = ServiceMetrics()
    metrics.observe_request("/predict", "POST", 200, 0.004)
    metrics.observe_scores([0.07, 0.5, 0.99], 2)
    found = families(metrics)
    latency = {
        s.labels["le"]: s.value
        for s in found["modelops_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert [float(le) for le in latency][:-1] == [float(b) for b in LATENCY_BUCKETS]
    assert latency["0.0025"] == 0 and latency["0.005"] == 1
    score = {
        float(s.labels["le"]): s.value
        for s in found["modelops_prediction_score"].samples
        if s.name.endswith("_bucket")
    }
    assert score[0.05] == 0 and score[0.1] == 1 and score[0.5] == 2 and score[1.0] == 3
    decisions = {s.labels["decision"]: s.value for s in found["modelops_predictions"].samples}
    assert decisions == {"positive": 2, "negative": 1}


def expected_bins(card: ModelCard, batch: Batch, scores: list[float]) -> Counter[tuple[str, str]]:
    """Independent count with registry.reference, the code that built the reference bins."""
    out: Counter[tuple[str, str]] = Counter()
    for j, feature in enumerate(card.numeric):
        edges = card.reference["features"][feature]["edges"]
        labels = bin_labels(edges)
        for i in numeric_bin_index(batch.numeric[:, j], edges):
            out[(feature, labels[i])] += 1
    for j, feature in enumerate(card.categorical):
        known = set(card.reference["features"][feature]["proportions"]) - {MISSING, OTHER}
        for value in batch.categorical[j]:
            label = MISSING if value is None else (value if value in known else OTHER)
            out[(feature, label)] += 1
    labels = bin_labels(card.reference["score"]["edges"])
    for i in numeric_bin_index(np.asarray(scores), card.reference["score"]["edges"]):
        out[(SCORE_FEATURE, labels[i])] += 1
    return out


def bin_counts(metrics: ServiceMetrics) -> Counter[tuple[str, str]]:
    samples = families(metrics)["modelops_feature_bin"].samples
    return Counter(
        {
            (s.labels["feature"], s.labels["bin"]): int(s.value)
            for s in samples
            if s.name.endswith("_total") and s.value
        }
    )


def test_drift_bins_count_like_the_reference(card: ModelCard, test_batch: Batch) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(test_batch.rows).tolist()
    batch_metrics, row_metrics = ServiceMetrics(), ServiceMetrics()
    DriftBins(card, batch_metrics).count(test_batch.numeric, test_batch.categorical, scores)
    one_by_one = DriftBins(card, row_metrics)
    for i in range(test_batch.rows):  # the per-value path used for small requests
        one_by_one.count(
            test_batch.numeric[i : i + 1], [[c[i]] for c in test_batch.categorical], [scores[i]]
        )
    expected = expected_bins(card, test_batch, scores)
    assert bin_counts(batch_metrics) == expected
    assert bin_counts(row_metrics) == expected
    assert expected[("Job", OTHER)] == 10
    assert expected[("Home", MISSING)] >= 1
    assert sum(n for (f, _), n in expected.items() if f == SCORE_FEATURE) == test_batch.rows


def test_every_reference_bin_is_exported_with_its_training_share(card: ModelCard) -> None:
    metrics = ServiceMetrics()
    DriftBins(card, metrics)
    found = families(metrics)
    shares = {
        (s.labels["feature"], s.labels["bin"]): s.value
        for s in found["modelops_feature_reference_proportion"].samples
    }
    zero_counts = {
        (s.labels["feature"], s.labels["bin"])
        for s in found["modelops_feature_bin"].samples
        if s.name.endswith("_total")
    }
    specs = {**card.reference["features"], SCORE_FEATURE: card.reference["score"]}
    for feature, spec in specs.items():
        for label, share in spec["proportions"].items():
            assert shares[(feature, label)] == pytest.approx(share)
            assert (feature, label) in zero_counts  # series exist before any traffic
    assert (("Job", OTHER)) in shares and (("Seniority", MISSING)) in shares
