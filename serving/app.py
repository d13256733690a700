"""The FastAPI app factory: routes, OpenAPI built from the model's schema, lifespan.

The two scoring routes are bare ASGI apps (serving.endpoints) documented by serving.openapi;
/health, /ready, /ping, /version and /metrics are ordinary FastAPI routes.

`create_app()` reads ServeSettings from the environment (MODELOPS_*), reads the model card
(signature, reference, example) so the OpenAPI page is complete at once, and loads the
model itself in the background at startup: /health answers while it loads, /ready only once
it is loaded and a warm-up prediction passed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.routing import Route

from serving.endpoints import ScoringEndpoint
from serving.metrics import MetricsMiddleware, ServiceMetrics
from serving.model import is_registry_uri, read_card, resolve_model_dir
from serving.openapi import scoring_paths
from serving.service import ScoringService, start_loading
from serving.settings import ServeSettings

JSON = "application/json"


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


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type=JSON)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """Build the service for the model named in settings (default: from the environment)."""
    settings = settings or ServeSettings()
    downloaded = is_registry_uri(settings.model_uri)  # into a temp folder, removed at shutdown
    model_dir = resolve_model_dir(settings.model_uri)
    card = read_card(model_dir, settings.model_name)
    metrics = ServiceMetrics()
    service = ScoringService(card, settings, metrics)

    async def flush_metrics() -> None:
        while True:
            await asyncio.sleep(settings.metrics_flush_seconds)
            metrics.flush()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.log.start()
        start_loading(service)
        flusher = asyncio.create_task(flush_metrics())
        yield
        flusher.cancel()
        metrics.flush()
        metrics.ready.set(0)
        service.log.close()
        if downloaded:
            shutil.rmtree(model_dir.parent, ignore_errors=True)

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
    for path, mlflow in (("/predict", False), ("/invocations", True)):
        endpoint = ScoringEndpoint(service, settings, path, mlflow)
        app.router.routes.append(Route(path, endpoint, methods=["POST"], include_in_schema=False))

    def not_ready() -> str:
        return service.error or "the model is still loading; retry shortly"

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Response:
        """Alive: 200 unless loading the model failed (then restart the process)."""
        if service.error:
            return _json({"status": "failed", "error": service.error}, 503)
        return _json({"status": "ok"})

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
    async def ready() -> Response:
        """200 once the model is loaded and warmed up in every worker."""
        if not service.ready:
            return _json({"ready": False, "reason": not_ready()}, 503)
        if not service.service_ready():
            reason = "another worker is still loading the model; retry shortly"
            return _json({"ready": False, "reason": reason}, 503)
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
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            spec["paths"] = {**scoring_paths(card, service.schema, components), **spec["paths"]}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.service = service
    return app
