"""Side by side with `mlflow models serve` on the same model folder: the same requests get
the same probabilities (to 1e-6) from /invocations, in every input format, on the real test
split with missing values and unseen categories; and MLflow's own client works against us."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelops.config import Params
from modelops.pipeline.data import coerce_features
from serving.process import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(
    trained_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("parity")
    model = str(trained_model["model_dir"])
    mlflow = ServiceProcess(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model,
         "--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", "{port}"],
        env={"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        log=tmp / "mlflow.log", ready_path="/ping",
    )  # fmt: skip
    mlflow.args[-1] = str(mlflow.port)
    ours = ServiceProcess(
        model=model,
        env={"MODELOPS_MAX_BATCH_ROWS": "5000", "MODELOPS_PREDICTION_LOG": ""},
        log=tmp / "ours.log",
    )
    with mlflow, ours:
        yield ours.url, mlflow.url


@pytest.fixture(scope="module")
def rows(split_frames: tuple[pd.DataFrame, pd.DataFrame], params: Params) -> list[dict[str, Any]]:
    """The whole test split, plus rows with unseen categories and missing values."""
    test = split_frames[1]
    extra = []
    for i, column in enumerate(params.data.categorical_features):
        unseen = test.iloc[10 * i : 10 * i + 5].copy()
        unseen[column] = "not-in-training"
        missing = test.iloc[10 * i + 5 : 10 * i + 10].copy()
        missing[column] = None
        extra += [unseen, missing]
    holes = test.iloc[100:110].copy()
    holes[params.data.numeric_features[:4]] = np.nan
    frame = coerce_features(pd.concat([test, *extra, holes], ignore_index=True), params.data)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def predictions(url: str, body: Any) -> np.ndarray:
    response = httpx.post(f"{url}/invocations", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"], dtype=float)


def test_same_predictions_on_the_test_split(servers: tuple[str, str], rows: list[dict]) -> None:
    ours, mlflow = servers
    columns = list(rows[0])
    body = {
        "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    }
    a, b = predictions(ours, body), predictions(mlflow, body)
    assert a.shape == b.shape == (len(rows), 2)
    assert np.max(np.abs(a - b)) <= 1e-6
    assert len(rows) > 1100 and a[:, 1].std() > 0.1


def test_same_predictions_in_every_format(servers: tuple[str, str], rows: list[dict]) -> None:
    ours, mlflow = servers
    picked = rows[-90:]  # the rows with unseen categories and missing values
    by_column = {c: [r[c] for r in picked] for c in picked[0]}
    for body in (
        {"dataframe_records": picked},
        {"instances": picked},
        {"inputs": by_column},
        {"inputs": picked},
        {"dataframe_records": picked[:1]},
    ):
        a, b = predictions(ours, body), predictions(mlflow, body)
        assert np.max(np.abs(a - b)) <= 1e-6, next(iter(body))


def test_mlflow_example_with_nan(servers: tuple[str, str], trained_model: dict[str, Any]) -> None:
    ours, mlflow = servers
    example = json.loads(
        (Path(trained_model["model_dir"]) / "serving_input_example.json").read_text()
    )
    example["dataframe_split"]["data"][0][4] = float("nan")  # how MLflow clients send "missing"
    raw = json.dumps(example)
    assert "NaN" in raw
    answers = []
    for url in (ours, mlflow):
        response = httpx.post(
            f"{url}/invocations", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        answers.append(np.asarray(response.json()["predictions"]))
    assert np.max(np.abs(answers[0] - answers[1])) <= 1e-6


def test_mlflow_scoring_client_works_against_us(servers: tuple[str, str], rows: list[dict]) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    ours, mlflow = servers
    frame = pd.DataFrame(rows[:50])
    results = []
    for url in (ours, mlflow):
        host, port = url.removeprefix("http://").split(":")
        client = ScoringServerClient(host, int(port))
        assert client.wait_server_ready(timeout=10) is None
        results.append(np.asarray(client.invoke(frame).get_predictions(), dtype=float))
    assert results[0].shape == (50, 2)
    assert np.max(np.abs(results[0] - results[1])) <= 1e-6
