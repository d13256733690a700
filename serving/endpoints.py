"""POST /predict and POST /invocations as bare ASGI apps, mounted as plain Starlette routes.

The scoring routes are the hot path: FastAPI's per-request machinery (Request object,
dependency solving, response classes) cost more CPU than scoring itself, so these two
handlers read the body from `receive` and write bytes to `send` directly. Routing, 405s,
the metrics middleware and the OpenAPI page (serving.openapi) are unchanged; everything
else in the service stays ordinary FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from serving.predictor import PredictionError
from serving.schema import RequestError
from serving.service import Scored, ScoringService, request_id
from serving.settings import ServeSettings

JSON = b"application/json"
Parser = Callable[[bytes], list[dict[str, Any]]]


class Disconnected(Exception):
    """The client went away before sending its whole body."""


class ScoringEndpoint:
    """One scoring route: parse -> score -> render, with errors as 4xx/503 JSON bodies."""

    def __init__(
        self, service: ScoringService, settings: ServeSettings, route: str, mlflow: bool
    ) -> None:
        self.service, self.route, self.mlflow = service, route, mlflow
        self.limit = settings.max_body_bytes
        card = service.card
        self.parse: Parser
        if mlflow:
            from serving.mlflow_protocol import parse_invocation

            schema = service.schema
            self.parse = lambda body: parse_invocation(body, schema)
        else:
            self.parse = service.schema.parse_json
        self.static = {
            "model_name": card.name,
            "model_version": card.version,
            "positive_class": card.positive_class,
            "threshold": card.threshold,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        content_type = length = rid_header = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"x-request-id":
                rid_header = value.decode("latin-1")
        rid = request_id(rid_header)
        try:
            if not self.service.ready:
                reason = self.service.error or "the model is still loading; retry shortly"
                raise RequestError(503, reason)
            check_content_type(content_type)
            body = await read_body(receive, length, self.limit)
            scored = self.service.score(self.parse(body), self.route, rid)
            status, payload = 200, self.render(scored)
        except (RequestError, PredictionError) as error:
            failure = error if isinstance(error, RequestError) else RequestError(422, str(error))
            status, payload = failure.status, self.error_body(failure)
        except Disconnected:
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def render(self, scored: Scored) -> bytes:
        scores = scored.scores.tolist()
        if self.mlflow:
            return orjson.dumps({"predictions": [[1.0 - p, p] for p in scores]})
        predictions = [
            {"score": s, "decision": d} for s, d in zip(scores, scored.decisions, strict=True)
        ]
        return orjson.dumps(
            {"request_id": scored.request_id, **self.static, "predictions": predictions}
        )

    def error_body(self, error: RequestError) -> bytes:
        errors = [e.as_dict() for e in error.errors]
        if self.mlflow:
            return orjson.dumps(
                {"error_code": "BAD_REQUEST", "message": error.summary, "errors": errors}
            )
        return orjson.dumps({"detail": error.summary, "errors": errors})


def check_content_type(value: bytes | None) -> None:
    if value is None or value.split(b";", 1)[0].strip().lower() != JSON:
        shown = repr(value.decode("latin-1")) if value is not None else "missing"
        raise RequestError(415, f"content type {shown}: send application/json")


async def read_body(receive: Any, length: bytes | None, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes (declared or actually sent)."""
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, f"invalid Content-Length {length.decode('latin-1')!r}")
        if int(length) > limit:
            raise RequestError(413, f"body of {int(length)} bytes is over the {limit}-byte limit")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
