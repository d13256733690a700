"""OpenAPI for the scoring routes: request bodies from the model's schema, responses from
the pydantic models below. (The routes are bare ASGI apps, serving.endpoints, so FastAPI
does not describe them itself; these models are what they return.)"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.model import ModelCard
from serving.schema import RequestSchema

JSON = "application/json"
REF = "#/components/schemas/{model}"
ERRORS = {
    400: "malformed JSON or an unusable body shape",
    413: "body over MODELOPS_MAX_BODY_BYTES",
    415: "content type is not application/json",
    422: "a record does not match the model's schema, or no / too many records",
    503: "the model is not loaded (yet)",
}


class Prediction(BaseModel):
    score: float = Field(ge=0, le=1, description="probability of the positive class")
    decision: Literal["positive", "negative"] = Field(description="score >= threshold")


class PredictResponse(BaseModel):
    request_id: str = Field(description="the X-Request-ID sent, or a new one (also a header)")
    model_name: str
    model_version: str
    positive_class: str = Field(description="the label a positive decision stands for")
    threshold: float
    predictions: list[Prediction] = Field(description="one per record, in request order")


class InvocationsResponse(BaseModel):
    predictions: list[list[float]] = Field(description="predict_proba rows: [p_neg, p_pos]")


class FieldErrorModel(BaseModel):
    loc: list[str | int] = Field(description="where: record index and field name")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong, naming the record and field")
    errors: list[FieldErrorModel] = Field(default_factory=list)


class MlflowErrorResponse(BaseModel):
    """MLflow's scoring server error shape, plus the field errors."""

    error_code: str
    message: str
    errors: list[FieldErrorModel] = Field(default_factory=list)


def _component(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _operation(
    summary: str,
    description: str,
    body: dict[str, Any],
    example: Any,
    ok: type[BaseModel],
    error: type[BaseModel],
    components: dict[str, Any],
) -> dict[str, Any]:
    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {JSON: {"schema": _component(model, components)}}

    responses: dict[str, Any] = {
        "200": {"description": "Successful Response", "content": content(ok)}
    }
    for code, text in ERRORS.items():
        responses[str(code)] = {"description": text, "content": content(error)}
    return {
        "post": {
            "summary": summary,
            "description": description,
            "operationId": summary.split()[0].lower() + "_" + ok.__name__.lower(),
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": body, "example": example}},
            },
            "responses": responses,
        }
    }


def invocations_body(ref: dict[str, str], max_rows: int, features: list[str]) -> dict[str, Any]:
    """The four MLflow input formats, each with records of the model's schema."""
    records = {"type": "array", "items": ref, "minItems": 1, "maxItems": max_rows}
    width = len(features)
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {
                "type": "array",
                "items": {"enum": features},
                "uniqueItems": True,
                "minItems": width,
                "maxItems": width,
            },
            "data": {
                "type": "array",
                "items": {"type": "array", "minItems": width, "maxItems": width},
                "minItems": 1,
                "maxItems": max_rows,
            },
            "index": {"type": "array", "description": "row labels (ignored)"},
        },
    }
    columns = {"type": "object", "additionalProperties": {"type": "array"}}
    params = {"type": ["object", "null"], "description": "ignored, as by MLflow for this model"}

    def one(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [key],
            "properties": {key: value, "params": params},
            "additionalProperties": False,
        }

    return {
        "oneOf": [
            one("dataframe_split", split),
            one("dataframe_records", records),
            one("instances", {"anyOf": [records, columns]}),
            one("inputs", {"anyOf": [records, columns]}),
        ]
    }


def scoring_paths(
    card: ModelCard, schema: RequestSchema, components: dict[str, Any]
) -> dict[str, Any]:
    """Path items for /predict and /invocations; adds their schemas to `components`."""
    components[schema.record_title] = schema.record_schema()
    ref = {"$ref": REF.format(model=schema.record_title)}
    features = [f.name for f in card.features]
    return {
        "/predict": _operation(
            "Score one record or a list of records",
            f"Probability of `{card.positive_class}` and the decision at threshold "
            f"{card.threshold}, per record. Send one object or an array of up to "
            f"{schema.max_rows}; `null` marks a missing value.",
            schema.predict_body_schema(ref["$ref"]),
            card.example[0],
            PredictResponse,
            ErrorResponse,
            components,
        ),
        "/invocations": _operation(
            "Score in MLflow's scoring protocol",
            "What `mlflow models serve` answers for the same model and body: predict_proba "
            "rows. NaN in a body also marks a missing value, as in MLflow.",
            invocations_body(ref, schema.max_rows, features),
            {"dataframe_records": card.example[:2]},
            InvocationsResponse,
            MlflowErrorResponse,
            components,
        ),
    }
