"""MLflow's scoring protocol: the four input formats give the same records, NaN means a
missing value as in MLflow's server, and malformed bodies get a 4xx saying what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from serving.mlflow_protocol import parse_invocation
from serving.model import ModelCard, read_card
from serving.schema import RequestError, RequestSchema


@pytest.fixture(scope="module")
def card(trained_model: dict[str, Any]) -> ModelCard:
    return read_card(Path(trained_model["model_dir"]))


@pytest.fixture(scope="module")
def schema(card: ModelCard) -> RequestSchema:
    return RequestSchema(card, max_rows=10)


@pytest.fixture
def rows(card: ModelCard) -> list[dict[str, Any]]:
    first, second = dict(card.example[0]), dict(card.example[1])
    first["Income"], second["Home"] = None, None
    return [first, second]


def parse(body: Any, schema: RequestSchema) -> list[dict[str, Any]]:
    return parse_invocation(json.dumps(body).encode(), schema)


def test_every_format_gives_the_same_records(
    rows: list[dict[str, Any]], schema: RequestSchema
) -> None:
    columns = list(reversed(list(rows[0])))  # column order is free
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    by_column = {c: [r[c] for r in rows] for c in rows[0]}
    bodies = [
        {"dataframe_split": split},
        {"dataframe_split": {**split, "index": [7, 8]}},
        {"dataframe_records": rows},
        {"instances": rows},
        {"instances": by_column},
        {"inputs": by_column},
        {"inputs": rows, "params": {}},
        {"inputs": rows, "params": None},
    ]
    for body in bodies:
        assert parse(body, schema) == rows, body


def test_mlflow_serving_example_with_nan_parses(card: ModelCard, schema: RequestSchema) -> None:
    """MLflow's example file, and its clients, write NaN for a missing number."""
    example = json.loads((card.path / "serving_input_example.json").read_text())
    columns = example["dataframe_split"]["columns"]
    example["dataframe_split"]["data"][0][columns.index("Income")] = float("nan")
    raw = json.dumps(example).encode()
    assert b"NaN" in raw
    records = parse_invocation(raw, schema)
    assert records[0]["Income"] is None
    assert records[1:] == card.example[1:]
    assert {k: v for k, v in records[0].items() if k != "Income"} == {
        k: v for k, v in card.example[0].items() if k != "Income"
    }


def test_infinity_is_refused(rows: list[dict[str, Any]], schema: RequestSchema) -> None:
    body = json.dumps({"dataframe_records": [{**rows[0], "Age": float("inf")}]})
    assert "Infinity" in body
    with pytest.raises(RequestError) as caught:
        parse_invocation(body.encode(), schema)
    assert caught.value.status == 422
    assert caught.value.summary == "dataframe_records[0].Age: Input should be a finite number"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "exactly one of"),
        ({"dataframe_records": [], "instances": []}, "exactly one of"),
        ({"records": []}, "exactly one of"),
        ({"inputs": [], "extra": 1}, "got ['extra', 'inputs']"),
        ([], "JSON object with one of the keys"),
        ({"dataframe_split": [[1]]}, 'an object with "columns" and "data"'),
        ({"dataframe_split": {"columns": "Age", "data": []}}, "a list of column names"),
        ({"dataframe_split": {"columns": ["Age", "Age"], "data": []}}, "without repeated names"),
        (
            {"dataframe_split": {"columns": ["Age"], "data": [[1, 2]]}},
            "data[0] must be a list of 1",
        ),
        ({"dataframe_split": {"columns": ["Age"], "data": [[1]], "index": []}}, "a list of 1"),
        ({"dataframe_split": {"columns": ["Age"], "data": [[1]], "index": None}}, "a list of 1"),
        ({"dataframe_records": {"Age": [1]}}, "dataframe_records must be a list of records"),
        ({"inputs": {"Age": [1], "Job": [1, 2]}}, "equally long column lists"),
        ({"inputs": {"Age": 1}}, "equally long column lists"),
        ({"inputs": "x"}, "inputs must be a list of records"),
        ({"inputs": [], "params": 3}, "params must be an object"),
    ],
)
def test_bad_shapes_are_400_and_say_why(body: Any, words: str, schema: RequestSchema) -> None:
    with pytest.raises(RequestError) as caught:
        parse(body, schema)
    assert caught.value.status == 400
    assert words in caught.value.summary


def test_field_errors_are_located_inside_the_format(
    rows: list[dict[str, Any]], schema: RequestSchema
) -> None:
    bad = [rows[0], {**rows[1], "Job": 5, "Extra": 1}]
    with pytest.raises(RequestError) as caught:
        parse({"dataframe_records": bad}, schema)
    assert caught.value.status == 422
    assert {tuple(e.loc) for e in caught.value.errors} == {
        ("dataframe_records", 1, "Job"),
        ("dataframe_records", 1, "Extra"),
    }
    with pytest.raises(RequestError) as caught:
        parse({"inputs": []}, schema)
    assert caught.value.status == 422 and "at least 1" in caught.value.summary


def test_invalid_json_is_400(schema: RequestSchema) -> None:
    for body in (b"{", b"", b"{'single': 'quotes'}"):
        with pytest.raises(RequestError) as caught:
            parse_invocation(body, schema)
        assert caught.value.status == 400
        assert "not valid JSON" in caught.value.summary
