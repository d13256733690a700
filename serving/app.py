"""The FastAPI app factory: routes, OpenAPI built from the model's schema, lifespan.

`create_app()` reads ServeSettings from the environment (MODELOPS_*), reads the model card
(signature, reference, example) so the OpenAPI page is complete at once, and loads the
model itself in the background at startup: /health answers while it loads, /ready only once
it is loaded and a warm-up prediction passed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, Field

from serving.metrics import MetricsMiddleware, ServiceMetrics
from serving.mlflow_protocol import parse_invocation
from serving.model import read_card, resolve_model_dir
from serving.predictor import PredictionError
from serving.schema import RequestError
from serving.service import ScoringService, request_id, start_loading
from serving.settings import ServeSettings

JSON = "application/json"


class Prediction(BaseModel):
    score: float = Field(ge=0, le=1, description="probability of the positive class")
    decision: Literal["positive", "negative"] = Field(description="score >= threshold")


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    positive_class: str = Field(description="the label a positive decision stands for")
    threshold: float
    predictions: list[Prediction] = Field(description="one per record, in request order")


class InvocationsResponse(BaseModel):
    predictions: list[list[float]] = Field(description="predict_proba rows: [p_neg, p_pos]")


class FieldErrorModel(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong, naming the record and field")
    errors: list[FieldErrorModel] = Field(default_factory=list)


class MlflowErrorResponse(BaseModel):
    error_code: str
    message: str
    errors: list[FieldErrorModel] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok", "failed"]
    error: str | None = None


class Ready(BaseModel):
    ready: bool
    reason: str
    warmup_ms: float | None = None


class Version(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    git_commit: str
    image_tag: str
    environment: str
    track: str
    predictor: str
    features: list[str]


ERRORS = {
    400: "malformed JSON or an unusable body shape",
    413: "body over MODELOPS_MAX_BODY_BYTES",
    415: "content type is not application/json",
    422: "a record does not match the model's schema, or no / too many records",
    503: "the model is not loaded (yet)",
}


def _json(payload: Any, status: int = 200, rid: str | None = None) -> Response:
    headers = {"x-request-id": rid} if rid else None
    return Response(orjson.dumps(payload), status, headers=headers, media_type=JSON)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing other content types and bodies over `limit` bytes."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != JSON:
        raise RequestError(415, f"content type {content_type or 'missing'!r}: send {JSON}")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, f"invalid Content-Length {length!r}")
        if int(length) > limit:
            raise RequestError(413, f"body of {length} bytes is over the {limit}-byte limit")
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """Build the service for the model named in settings (default: from the environment)."""
    settings = settings or ServeSettings()
    card = read_card(resolve_model_dir(settings.model_uri), settings.model_name)
    metrics = ServiceMetrics()
    service = ScoringService(card, settings, metrics)
    schema = service.schema
    record_ref = f"#/components/schemas/{schema.record_title}"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.log.start()
        start_loading(service)
        yield
        metrics.ready.set(0)
        service.log.close()

    app = FastAPI(
        title=f"{card.name} scoring service",
        version=card.version,
        description=(
            f"Scores {card.name} version {card.version}: the probability that a record is "
            f"`{card.positive_class}`, and the decision at threshold {card.threshold}. "
            "Fields come from the model's signature; `null` marks a missing value."
        ),
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def not_ready() -> RequestError:
        return RequestError(503, service.error or "the model is still loading; retry shortly")

    def error_body(error: RequestError, mlflow: bool) -> dict[str, Any]:
        errors = [e.as_dict() for e in error.errors]
        if mlflow:
            return {"error_code": "BAD_REQUEST", "message": error.summary, "errors": errors}
        return {"detail": error.summary, "errors": errors}

    def body_doc(schema_: dict[str, Any], example: Any) -> dict[str, Any]:
        content = {JSON: {"schema": schema_, "example": example}}
        return {"requestBody": {"required": True, "content": content}}

    def error_docs(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
        return {code: {"model": model, "description": text} for code, text in ERRORS.items()}

    @app.post(
        "/predict",
        summary="Score one record or a list of records",
        response_model=PredictResponse,
        responses=error_docs(ErrorResponse),
        openapi_extra=body_doc(schema.predict_body_schema(record_ref), card.example[0]),
    )
    async def predict(request: Request) -> Response:
        rid = request_id(request.headers.get("x-request-id"))
        try:
            if not service.ready:
                raise not_ready()
            body = await read_body(request, settings.max_body_bytes)
            records = schema.parse_json(body)
            scored = service.score(records, "/predict", rid)
        except (RequestError, PredictionError) as error:
            failure = error if isinstance(error, RequestError) else RequestError(422, str(error))
            return _json(error_body(failure, mlflow=False), failure.status, rid)
        return _json(
            {
                "request_id": rid,
                "model_name": card.name,
                "model_version": card.version,
                "positive_class": card.positive_class,
                "threshold": card.threshold,
                "predictions": [
                    {"score": s, "decision": d}
                    for s, d in zip(scored.scores.tolist(), scored.decisions, strict=True)
                ],
            },
            rid=rid,
        )

    invocation_example = {"dataframe_records": card.example[:2]}

    @app.post(
        "/invocations",
        summary="MLflow scoring protocol (same answers as `mlflow models serve`)",
        response_model=InvocationsResponse,
        responses=error_docs(MlflowErrorResponse),
        openapi_extra=body_doc(
            invocations_schema(record_ref, settings, [f.name for f in card.features]),
            invocation_example,
        ),
    )
    async def invocations(request: Request) -> Response:
        rid = request_id(request.headers.get("x-request-id"))
        try:
            if not service.ready:
                raise not_ready()
            body = await read_body(request, settings.max_body_bytes)
            records = parse_invocation(body, schema)
            scored = service.score(records, "/invocations", rid)
        except (RequestError, PredictionError) as error:
            failure = error if isinstance(error, RequestError) else RequestError(422, str(error))
            return _json(error_body(failure, mlflow=True), failure.status, rid)
        proba = [[1.0 - p, p] for p in scored.scores.tolist()]
        return _json({"predictions": proba}, rid=rid)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Response:
        """Alive: 200 unless loading the model failed (then restart the process)."""
        if service.error:
            return _json({"status": "failed", "error": service.error}, 503)
        return _json({"status": "ok"})

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
    async def ready() -> Response:
        """200 once the model is loaded and its warm-up prediction passed."""
        if not service.ready:
            return _json({"ready": False, "reason": str(not_ready())}, 503)
        payload = {"ready": True, "reason": service.predictor_note, "warmup_ms": service.warmup_ms}
        return _json(payload)

    @app.get("/ping", response_model=Ready, responses={503: {"model": Ready}})
    async def ping() -> Response:
        """MLflow's readiness probe (what its clients poll): the same answer as /ready."""
        return await ready()

    @app.get("/version", response_model=Version)
    async def version() -> Response:
        """What this process serves, and from which build."""
        return _json(
            {
                "model_name": card.name,
                "model_version": card.version,
                "run_id": card.run_id,
                "git_commit": service.git_commit,
                "image_tag": settings.image_tag,
                "environment": settings.environment,
                "track": settings.track,
                "predictor": service.predictor_note,
                "features": [f.name for f in card.features],
            }
        )

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus exposition (all workers merged)."""
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec.setdefault("components", {}).setdefault("schemas", {})[schema.record_title] = (
                schema.record_schema()
            )
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.service = service
    return app


def invocations_schema(
    record_ref: str, settings: ServeSettings, features: list[str]
) -> dict[str, Any]:
    """The four MLflow input formats, each with records of the model's schema."""
    records = {
        "type": "array",
        "items": {"$ref": record_ref},
        "minItems": 1,
        "maxItems": settings.max_batch_rows,
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {
                "type": "array",
                "items": {"enum": features},
                "uniqueItems": True,
                "minItems": len(features),
                "maxItems": len(features),
            },
            "data": {
                "type": "array",
                "items": {"type": "array", "minItems": len(features), "maxItems": len(features)},
                "minItems": 1,
                "maxItems": settings.max_batch_rows,
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
