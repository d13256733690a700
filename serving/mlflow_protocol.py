"""MLflow's scoring protocol (`POST /invocations`), so any MLflow client can call the service.

Accepted JSON bodies, as `mlflow models serve` accepts them:
  {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
  {"dataframe_records": [{...}, ...]}
  {"instances": [{...}, ...]}          (or a dict of columns)
  {"inputs": {"col": [...], ...}}      (or a list of records)
with an optional "params" object, which this model ignores, as MLflow does. NaN stands for a
missing value (as pandas reads it in MLflow's server); Infinity is refused. The answer is
{"predictions": [[p_negative, p_positive], ...]}, the model's predict_proba rows.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from serving.schema import RequestError, RequestSchema

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:  # the stdlib parser reads NaN/Infinity, which MLflow clients send for missing values
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(400, f"body is not valid JSON: {error}") from None


def _shape_error(key: str, expected: str) -> RequestError:
    return RequestError(400, f"{key} must be {expected}")


def _from_split(payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise _shape_error("dataframe_split", 'an object with "columns" and "data" (list of rows)')
    columns = payload.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _shape_error("dataframe_split.columns", "a list of column names")
    if len(set(columns)) != len(columns):
        raise _shape_error("dataframe_split.columns", "a list without repeated names")
    records = []
    for i, row in enumerate(payload["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _shape_error(f"dataframe_split.data[{i}]", f"a list of {len(columns)} values")
        records.append(dict(zip(columns, row, strict=True)))
    index = payload.get("index", records)
    if not isinstance(index, list) or len(index) != len(records):
        raise _shape_error("dataframe_split.index", f"a list of {len(records)} labels")
    return records


def _from_columns(payload: dict[str, Any], key: str) -> list[Any]:
    lengths = {len(v) for v in payload.values() if isinstance(v, list)}
    if not payload or len(lengths) != 1 or not all(isinstance(v, list) for v in payload.values()):
        raise _shape_error(key, "a list of records or an object of equally long column lists")
    rows = lengths.pop()
    return [{name: values[i] for name, values in payload.items()} for i in range(rows)]


def _missing_to_none(records: list[Any]) -> list[Any]:
    for record in records:
        if isinstance(record, dict):
            for name, value in record.items():
                if isinstance(value, float) and math.isnan(value):
                    record[name] = None
    return records


def parse_invocation(body: bytes, schema: RequestSchema) -> list[dict[str, Any]]:
    """Records from an MLflow scoring request, validated against the model's schema."""
    data = _loads(body)
    if not isinstance(data, dict):
        raise RequestError(400, f"body must be a JSON object with one of the keys {FORMATS}")
    keys = [k for k in FORMATS if k in data]
    unknown = sorted(set(data) - {*FORMATS, "params"})
    if len(keys) != 1 or unknown:
        raise RequestError(
            400,
            f"body must hold exactly one of {FORMATS} (and optionally params); got {sorted(data)}",
        )
    key = keys[0]
    payload = data[key]
    if "params" in data and not isinstance(data["params"], dict | None):
        raise _shape_error("params", "an object")
    if key == "dataframe_split":
        records = _from_split(payload)
    elif isinstance(payload, list):
        records = payload
    elif isinstance(payload, dict) and key != "dataframe_records":
        records = _from_columns(payload, key)
    else:
        raise _shape_error(key, "a list of records")
    return schema.parse_records(_missing_to_none(records), (key,))
