"""The request schema, built from the model's signature: nothing here names a feature.

A record is a JSON object with exactly the model's columns: numbers (finite; ints accepted)
for numeric columns, strings for categorical ones, `null` for a missing value. Validation
runs in pydantic-core straight from the request bytes; errors name the record and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from serving.model import ModelCard


@dataclass(frozen=True)
class FieldError:
    """One problem with the request: where (record index, field) and what."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestError(Exception):
    """A bad request: HTTP status, one-line summary and the field errors behind it."""

    def __init__(self, status: int, summary: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(summary)
        self.status, self.summary, self.errors = status, summary, errors or []


def field_errors(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """pydantic errors without the offending input values (they may be large or private)."""
    return [
        FieldError((*prefix, *e["loc"]), e["msg"], e["type"])
        for e in error.errors(include_url=False, include_input=False)
    ]


def location(loc: tuple[str | int, ...]) -> str:
    """JSON-path-like location: ('dataframe_records', 0, 'Age') -> dataframe_records[0].Age."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def summarize(errors: list[FieldError], limit: int = 3) -> str:
    """'[0].Age: Input should be a finite number; ...' for the first few errors."""
    parts = [f"{location(e.loc)}: {e.msg}" for e in errors[:limit]]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


class RequestSchema:
    """Validators and JSON schemas for one model's records."""

    def __init__(self, card: ModelCard, max_rows: int) -> None:
        self.card, self.max_rows = card, max_rows
        fields: dict[str, Any] = {}
        for feature in card.features:
            ref = card.reference["features"][feature.name]
            if feature.kind == "numeric":
                fields[feature.name] = Annotated[
                    float | None,
                    Field(
                        strict=True,
                        allow_inf_nan=False,
                        description=f"numeric; null = missing. Training bins: {ref['edges']}",
                    ),
                ]
            else:
                known = [k for k in ref["proportions"] if not k.startswith("__")]
                fields[feature.name] = Annotated[
                    str | None,
                    Field(
                        strict=True,
                        description=f"category, one of {known} (others count as unseen); "
                        "null = missing",
                        examples=known[:3],
                    ),
                ]
        record: Any = with_config(ConfigDict(extra="forbid", title=self.record_title))(
            TypedDict(self.record_title, fields)  # type: ignore[operator]
        )
        self.record = TypeAdapter(record)
        batch: Any = Annotated[list[record], Field(min_length=1, max_length=max_rows)]
        self.batch: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(batch)

    @property
    def record_title(self) -> str:
        words = "".join(ch if ch.isalnum() else " " for ch in self.card.name).split()
        return "".join(w[:1].upper() + w[1:] for w in words) + "Record"

    def parse_json(self, body: bytes) -> list[dict[str, Any]]:
        """/predict body: one record (object) or a list of 1..max_rows records (array)."""
        start = body.lstrip()[:1]
        if start not in (b"[", b"{"):
            raise self._not_records(body)
        adapter: TypeAdapter[Any] = self.batch if start == b"[" else self.record
        try:
            parsed = adapter.validate_json(body)
        except ValidationError as error:
            raise self._error(error) from None
        return parsed if isinstance(parsed, list) else [parsed]

    @staticmethod
    def _not_records(body: bytes) -> RequestError:
        if not body.strip():
            return RequestError(400, "empty body: send one record or an array of records")
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return RequestError(400, f"body is not valid JSON: {error}")
        return RequestError(422, "body must be a JSON object (one record) or an array of records")

    def parse_records(self, records: Any, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
        """Records already decoded from JSON (the MLflow protocol)."""
        try:
            return list(self.batch.validate_python(records))
        except ValidationError as error:
            raise self._error(error, prefix) from None

    def _error(self, error: ValidationError, prefix: tuple[str | int, ...] = ()) -> RequestError:
        errors = field_errors(error, prefix)
        if any(e.type == "json_invalid" for e in errors):
            return RequestError(400, f"body is not valid JSON: {errors[0].msg}", errors)
        return RequestError(422, summarize(errors), errors)

    # -- OpenAPI ----------------------------------------------------------------------------

    def record_schema(self) -> dict[str, Any]:
        schema = self.record.json_schema()
        schema["examples"] = [self.card.example[0]]
        return schema

    def predict_body_schema(self, ref: str) -> dict[str, Any]:
        return {
            "anyOf": [
                {"$ref": ref},
                {"type": "array", "items": {"$ref": ref}, "minItems": 1, "maxItems": self.max_rows},
            ]
        }
