"""The FastAPI app in process (TestClient runs its lifespan): predictions equal the sklearn
pipeline's, bad input is a 4xx naming the field, OpenAPI shows the model's fields, /ready
waits for the model, and /metrics and the prediction log record what was served."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import serving.service
from modelops.config import Params
from modelops.pipeline.data import coerce_features
from modelops.pipeline.train import train_and_log
from modelops.registry.tracking import TrackingSettings
from serving.app import create_app
from serving.model import load_pipeline, read_card
from serving.settings import ServeSettings

EXPORT = {"model_name": "credit-scoring", "model_version": "7", "git_commit": "abc123"}


@pytest.fixture(scope="module")
def model_dir(trained_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model as `modelops export-model` leaves it (with export.json)."""
    folder = tmp_path_factory.mktemp("served") / "model"
    shutil.copytree(trained_model["model_dir"], folder)
    run_id = str(trained_model["run_id"])
    (folder / "export.json").write_text(json.dumps({**EXPORT, "run_id": run_id}))
    return folder


@pytest.fixture(scope="module")
def test_features(split_frames: tuple[pd.DataFrame, pd.DataFrame], params: Params) -> pd.DataFrame:
    return coerce_features(split_frames[1], params.data)


def records_of(features: pd.DataFrame) -> list[dict[str, Any]]:
    return features.astype(object).where(features.notna(), None).to_dict("records")


def settings_for(model: Path, tmp_path: Path, **extra: Any) -> ServeSettings:
    return ServeSettings(
        model_uri=str(model),
        prediction_log=str(tmp_path / "predictions"),
        environment="unit",
        image_tag="img:1",
        **extra,
    )


def wait_ready(client: TestClient, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return dict(response.json())
        time.sleep(0.05)
    raise AssertionError(f"not ready: {client.get('/ready').json()}")


@pytest.fixture
def client(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(model_dir, tmp_path, max_batch_rows=300))) as c:
        wait_ready(c)
        yield c


def metric_samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_predictions_are_the_pipelines(
    client: TestClient, model_dir: Path, test_features: pd.DataFrame
) -> None:
    rows = test_features.head(300)
    response = client.post("/predict", json=records_of(rows))
    assert response.status_code == 200
    body = response.json()
    expected = load_pipeline(read_card(model_dir)).predict_proba(rows)[:, 1]
    scores = np.array([p["score"] for p in body["predictions"]])
    assert np.max(np.abs(scores - expected)) <= 1e-6
    assert [p["decision"] for p in body["predictions"]] == [
        "positive" if s >= 0.5 else "negative" for s in scores
    ]
    assert {"positive", "negative"} == {p["decision"] for p in body["predictions"]}
    assert (body["model_name"], body["model_version"]) == ("credit-scoring", "7")
    assert (body["positive_class"], body["threshold"]) == ("bad", 0.5)
    assert body["request_id"] == response.headers["x-request-id"]

    single = client.post("/predict", json=records_of(rows.head(1))[0]).json()
    assert single["predictions"][0]["score"] == pytest.approx(expected[0], abs=1e-6)
    mlflow = client.post("/invocations", json={"dataframe_records": records_of(rows.head(5))})
    assert mlflow.json()["predictions"] == [[1 - s, s] for s in scores[:5].tolist()]


def test_threshold_comes_from_the_model(
    model_dir: Path, tmp_path: Path, test_features: pd.DataFrame
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["metadata"]["decision_threshold"] = 0.2
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with TestClient(create_app(settings_for(folder, tmp_path, max_batch_rows=300))) as c:
        wait_ready(c)
        body = c.post("/predict", json=records_of(test_features.head(300))).json()
    assert body["threshold"] == 0.2
    decisions = [(p["score"] >= 0.2, p["decision"]) for p in body["predictions"]]
    assert all((d == "positive") == above for above, d in decisions)
    assert any(0.2 <= p["score"] < 0.5 for p in body["predictions"])


def test_version_and_request_ids(client: TestClient, trained_model: dict[str, Any]) -> None:
    version = client.get("/version").json()
    assert version["model_name"] == "credit-scoring"
    assert version["model_version"] == "7"
    assert version["run_id"] == trained_model["run_id"]
    assert version["git_commit"] == "abc123"
    assert version["image_tag"] == "img:1"
    assert version["environment"] == "unit"
    assert version["predictor"].startswith("onnx: matches sklearn")
    record = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
    example = record["content"]["application/json"]["example"]
    given = client.post("/predict", json=example, headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42" == given.json()["request_id"]
    for bad in ("has space", "x" * 200):
        fresh = client.post("/predict", json=example, headers={"X-Request-ID": bad})
        assert len(fresh.json()["request_id"]) == 32 and fresh.json()["request_id"] != bad


def bad_requests(example: dict[str, Any]) -> list[tuple[str, dict[str, Any], int, str]]:
    """(name, request kwargs, expected status, words the error must contain)."""
    as_json = {"headers": {"content-type": "application/json"}}
    bad_length = {"content-type": "application/json", "content-length": "x"}
    return [
        ("missing", {"json": {k: v for k, v in example.items() if k != "Age"}}, 422, "Age"),
        ("extra", {"json": {**example, "Colour": "red"}}, 422, "Colour"),
        ("mistyped", {"json": {**example, "Income": "high"}}, 422, "Income"),
        ("bool", {"json": {**example, "Debt": True}}, 422, "Debt"),
        ("number for string", {"json": {**example, "Job": 3}}, 422, "Job"),
        ("NaN", {"content": json.dumps({**example, "Age": float("nan")}), **as_json}, 422, "Age"),
        ("Inf", {"content": json.dumps({**example, "Age": float("inf")}), **as_json}, 422, "Age"),
        ("empty batch", {"json": []}, 422, "at least 1"),
        ("oversized batch", {"json": [example] * 301}, 422, "at most 300"),
        ("malformed", {"content": b'{"Age": ', **as_json}, 400, "not valid JSON"),
        ("empty body", {"content": b"", **as_json}, 400, "empty body"),
        ("scalar", {"content": b"12", **as_json}, 422, "JSON object"),
        ("text/plain", {"content": json.dumps(example)}, 415, "application/json"),
        ("form", {"data": {"Age": "1"}}, 415, "application/x-www-form-urlencoded"),
        ("too big", {"content": b"[" + b" " * 70_000 + b"]", **as_json}, 413, "65536-byte"),
        (
            "too big, chunked",
            {"content": iter([b"[", b" " * 40_000, b" " * 40_000, b"]"]), **as_json},
            413,
            "65536-byte",
        ),
        ("bad length", {"content": b"{}", "headers": bad_length}, 400, "Content-Length"),
    ]


def test_bad_input_is_a_4xx_naming_the_problem(model_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(model_dir, tmp_path, max_batch_rows=300, max_body_bytes=65536)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        example = dict(read_card(model_dir).example[0])
        for name, kwargs, status, words in bad_requests(example):
            response = client.post("/predict", **kwargs)
            assert response.status_code == status, (name, response.text)
            assert words in response.json()["detail"], (name, response.json())
            if status == 422 and name not in ("empty batch", "oversized batch", "scalar"):
                assert words in {str(p) for e in response.json()["errors"] for p in e["loc"]}
            if name in ("too big", "text/plain"):
                mlflow = client.post("/invocations", **kwargs)
                assert mlflow.status_code == status
                assert mlflow.json()["error_code"] == "BAD_REQUEST"
                assert words in mlflow.json()["message"]
        assert client.post("/predict", json=example).status_code == 200
        assert client.get("/predict").status_code == 405
        assert client.post("/nowhere", json=example).status_code == 404
        samples = metric_samples(client)
    statuses = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "modelops_http_requests_total" and dict(labels)["route"] == "/predict"
    }
    assert statuses == {"200": 1, "400": 3, "413": 2, "415": 2, "422": 10, "405": 1}
    unmatched = [
        v
        for (name, labels), v in samples.items()
        if name == "modelops_http_requests_total" and dict(labels)["route"] == "unmatched"
    ]
    assert unmatched == [1]  # 404s share one label value: no series per random path


def test_openapi_shows_the_models_fields(client: TestClient, model_dir: Path) -> None:
    spec = client.get("/openapi.json").json()
    card = read_card(model_dir)
    record = spec["components"]["schemas"]["CreditScoringRecord"]
    assert list(record["properties"]) == [f.name for f in card.features]
    assert record["properties"]["Age"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert record["properties"]["Job"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "freelance" in record["properties"]["Job"]["description"]
    assert record["examples"] == [card.example[0]]
    predict = spec["paths"]["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]
    assert body["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/CreditScoringRecord"}
    assert body["schema"]["anyOf"][1]["maxItems"] == 300
    assert body["example"] == card.example[0]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict["responses"])
    invocations = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    formats = [
        next(iter(s["properties"])) for s in invocations["application/json"]["schema"]["oneOf"]
    ]
    assert formats == ["dataframe_split", "dataframe_records", "instances", "inputs"]
    assert set(spec["paths"]) == {
        "/predict",
        "/invocations",
        "/health",
        "/ready",
        "/version",
        "/metrics",
        "/ping",
    }
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    routes = {dict(labels).get("route") for (name, labels) in metric_samples(client)}
    assert {"/openapi.json", "/docs"} <= routes  # static routes keep their own label


def test_ready_waits_for_the_model(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_load = serving.service.load_pipeline

    def slow_load(card: Any) -> Any:
        assert release.wait(30)
        return real_load(card)

    monkeypatch.setattr(serving.service, "load_pipeline", slow_load)
    with TestClient(create_app(settings_for(model_dir, tmp_path))) as client:
        example = client.get("/openapi.json").json()["components"]["schemas"]
        assert "CreditScoringRecord" in example  # the schema exists before the model loads
        assert client.get("/health").status_code == 200
        loading = client.get("/ready")
        assert loading.status_code == 503 and "loading" in loading.json()["reason"]
        early = client.post("/predict", json=read_card(model_dir).example[0])
        assert early.status_code == 503 and "loading" in early.json()["detail"]
        ready_gauge = metric_samples(client)[("modelops_model_ready", frozenset())]
        assert ready_gauge == 0
        release.set()
        ready = wait_ready(client)
        assert ready["warmup_ms"] > 0 and "matches sklearn" in ready["reason"]
        assert metric_samples(client)[("modelops_model_ready", frozenset())] == 1


def test_a_model_that_fails_to_load_fails_health(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(model_dir, folder)
    (folder / "model.skops").write_bytes(b"not a model")
    with TestClient(create_app(settings_for(folder, tmp_path))) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert (
            health.json()["error"] == f"loading {folder} failed: BadZipFile: File is not a zip file"
        )
        assert client.get("/ready").status_code == 503


def test_metrics_and_log_record_what_was_served(
    model_dir: Path, tmp_path: Path, test_features: pd.DataFrame
) -> None:
    rows = records_of(test_features.head(40))
    settings = settings_for(model_dir, tmp_path, prediction_log_flush_seconds=300)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        for start in range(0, 40, 10):
            client.post("/predict", json=rows[start : start + 10])
        client.post("/invocations", json={"instances": rows[:5]})
        samples = metric_samples(client)
    total = {
        dict(labels)["decision"]: v
        for (name, labels), v in samples.items()
        if name == "modelops_predictions_total"
    }
    assert sum(total.values()) == 45
    per_feature: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "modelops_feature_bin_total":
            feature = dict(labels)["feature"]
            per_feature[feature] = per_feature.get(feature, 0) + value
    assert set(per_feature.values()) == {45}
    assert "__score__" in per_feature and "Income" in per_feature
    info = [dict(labels) for (name, labels), v in samples.items() if name == "modelops_model_info"]
    assert info == [
        {
            "model_name": "credit-scoring",
            "model_version": "7",
            "run_id": info[0]["run_id"],
            "git_commit": "abc123",
            "image_tag": "img:1",
        }
    ]
    # flush interval 300 s: the lines below were written by the shutdown drain
    (log_file,) = (tmp_path / "predictions").glob("date=*/predictions-*.jsonl")
    lines = [json.loads(x) for x in log_file.read_text().splitlines()]
    assert len(lines) == 45
    assert [x["route"] for x in lines].count("/invocations") == 5
    assert all(x["environment"] == "unit" and x["model_version"] == "7" for x in lines)
    assert lines[0]["features"] == rows[0]
    assert len({x["request_id"] for x in lines}) == 5


def test_a_fork_with_other_features_needs_no_serving_change(
    params: Params, trained_model: dict[str, Any], tmp_path: Path, test_features: pd.DataFrame
) -> None:
    fork = params.model_copy(deep=True)
    fork.data.numeric_features = [f for f in params.data.numeric_features if f != "Price"]
    fork.data.categorical_features = [f for f in params.data.categorical_features if f != "Job"]
    root = Path(trained_model["root"])
    store = TrackingSettings(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        experiment_name="fork",
    )
    train_and_log(
        fork,
        root / "test.parquet",
        root / "test.parquet",
        tmp_path / "model",
        tmp_path / "run.json",
        store,
    )
    with TestClient(create_app(settings_for(tmp_path / "model", tmp_path))) as client:
        wait_ready(client)
        fields = client.get("/openapi.json").json()["components"]["schemas"]
        (record,) = [v for k, v in fields.items() if k.endswith("Record")]
        assert set(record["properties"]) == set(fork.data.features)
        rows = records_of(test_features[fork.data.features].head(3))
        assert client.post("/predict", json=rows).status_code == 200
        old = client.post("/predict", json=records_of(test_features.head(1)))
        assert old.status_code == 422
        assert {e["loc"][-1] for e in old.json()["errors"]} == {"Price", "Job"}


def test_a_client_that_disconnects_mid_body_gets_nothing(model_dir: Path, tmp_path: Path) -> None:
    import asyncio

    from serving.endpoints import ScoringEndpoint
    from serving.metrics import ServiceMetrics
    from serving.service import ScoringService

    settings = settings_for(model_dir, tmp_path)
    service = ScoringService(read_card(model_dir), settings, ServiceMetrics())
    service.load()
    messages = iter(
        [
            {"type": "http.request", "body": b'{"Age"', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"content-type", b"application/json")]}
    asyncio.run(ScoringEndpoint(service, settings, "/predict", mlflow=False)(scope, receive, send))
    assert sent == []
    assert sum(service.drift.score.counts) == 0  # nothing was scored
