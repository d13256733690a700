"""The request schema comes from the model's signature, and every kind of bad record gets a
4xx that names the record, the field and the problem."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelops.config import Params
from serving.model import Feature, ModelCard, read_card
from serving.schema import RequestError, RequestSchema


@pytest.fixture(scope="module")
def card(trained_model: dict[str, Any]) -> ModelCard:
    return read_card(Path(trained_model["model_dir"]))


@pytest.fixture(scope="module")
def schema(card: ModelCard) -> RequestSchema:
    return RequestSchema(card, max_rows=5)


@pytest.fixture
def record(card: ModelCard) -> dict[str, Any]:
    return dict(card.example[0])


def error_of(schema: RequestSchema, body: bytes | str) -> RequestError:
    with pytest.raises(RequestError) as caught:
        schema.parse_json(body.encode() if isinstance(body, str) else body)
    return caught.value


def test_fields_and_types_come_from_the_signature(
    card: ModelCard, schema: RequestSchema, params: Params
) -> None:
    json_schema = schema.record_schema()
    assert list(json_schema["properties"]) == [f.name for f in card.features]
    assert json_schema["required"] == [f.name for f in card.features]
    assert json_schema["additionalProperties"] is False
    for feature in card.features:
        kinds = {t.get("type") for t in json_schema["properties"][feature.name]["anyOf"]}
        assert kinds == ({"number", "null"} if feature.kind == "numeric" else {"string", "null"})
    assert json_schema["examples"] == [card.example[0]]
    assert card.numeric == params.data.numeric_features  # what params.yaml trained it with
    assert card.categorical == params.data.categorical_features


def test_a_model_with_other_features_gets_another_schema(card: ModelCard) -> None:
    """A fork that changes features changes the model's signature, and nothing else."""
    renamed = {f.name: f"{f.name.lower()}_v2" for f in card.features[:3]}
    features = tuple(Feature(renamed.get(f.name, f.name), f.kind) for f in card.features[1:])
    reference = dict(card.reference)
    reference["features"] = {renamed.get(k, k): v for k, v in card.reference["features"].items()}
    fork = dataclasses.replace(card, features=features, reference=reference, example=[])
    schema = RequestSchema(fork, max_rows=5)
    good = {f.name: None for f in features}
    assert schema.parse_json(orjson.dumps(good)) == [good]
    old = {f.name: None for f in card.features}
    error = error_of(schema, orjson.dumps(old))
    assert {tuple(e.loc) for e in error.errors} >= {("Seniority",), ("Time",), ("time_v2",)}


def test_one_record_or_a_list(schema: RequestSchema, record: dict[str, Any]) -> None:
    assert schema.parse_json(orjson.dumps(record)) == [record]
    assert schema.parse_json(orjson.dumps([record, record])) == [record, record]
    with_nulls = {k: None for k in record}
    assert schema.parse_json(orjson.dumps(with_nulls)) == [with_nulls]
    as_int = {**record, "Age": 40}
    assert schema.parse_json(orjson.dumps(as_int))[0]["Age"] == 40.0


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"Age": "40"}, ("Age",), "float_type"),
        ({"Age": True}, ("Age",), "float_type"),
        ({"Age": [40]}, ("Age",), "float_type"),
        ({"Home": 3}, ("Home",), "string_type"),
        ({"Home": {"x": 1}}, ("Home",), "string_type"),
        ({"Unknown": 1.0}, ("Unknown",), "extra_forbidden"),
    ],
)
def test_mistyped_and_extra_fields(
    schema: RequestSchema,
    record: dict[str, Any],
    change: dict[str, Any],
    loc: tuple[str, ...],
    kind: str,
) -> None:
    error = error_of(schema, orjson.dumps({**record, **change}))
    assert error.status == 422
    assert [(e.loc, e.type) for e in error.errors] == [(loc, kind)]
    assert error.summary.startswith(f"{loc[0]}: ")


def test_missing_field_in_the_third_record(schema: RequestSchema, record: dict[str, Any]) -> None:
    partial = {k: v for k, v in record.items() if k != "Income"}
    error = error_of(schema, orjson.dumps([record, record, partial]))
    assert error.status == 422
    assert [(e.loc, e.type) for e in error.errors] == [((2, "Income"), "missing")]
    assert error.summary == "[2].Income: Field required"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(
    schema: RequestSchema, record: dict[str, Any], literal: str
) -> None:
    body = json.dumps(record).replace(f'"Age": {json.dumps(record["Age"])}', f'"Age": {literal}')
    assert literal in body
    error = error_of(schema, body)
    assert error.status == 422
    assert [(e.loc, e.type) for e in error.errors] == [(("Age",), "finite_number")]


def test_empty_and_oversized_batches(schema: RequestSchema, record: dict[str, Any]) -> None:
    empty = error_of(schema, "[]")
    assert empty.status == 422 and empty.errors[0].type == "too_short"
    big = error_of(schema, orjson.dumps([record] * 6))
    assert big.status == 422 and big.errors[0].type == "too_long"
    assert "at most 5" in big.summary


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty body"),
        (b"   ", 400, "empty body"),
        (b'{"Age": 1', 400, "not valid JSON"),
        (b"[{}]]", 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (b"42", 422, "JSON object (one record) or an array"),
        (b'"a record"', 422, "JSON object (one record) or an array"),
        (b"null", 422, "JSON object (one record) or an array"),
    ],
)
def test_malformed_bodies(schema: RequestSchema, body: bytes, status: int, words: str) -> None:
    error = error_of(schema, body)
    assert error.status == status
    assert words in error.summary


def test_records_already_decoded(schema: RequestSchema, record: dict[str, Any]) -> None:
    assert schema.parse_records([record], ("inputs",)) == [record]
    with pytest.raises(RequestError) as caught:
        schema.parse_records([{**record, "Age": "x"}], ("inputs",))
    assert caught.value.summary == "inputs[0].Age: Input should be a valid number"
