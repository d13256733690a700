"""The scoring service behind the routes: load, warm up, score, count, log."""

from __future__ import annotations

import gc
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from serving.compiled import load_compiled
from serving.metrics import DriftBins, ServiceMetrics
from serving.model import ModelCard, load_pipeline
from serving.predictor import Batch, Predictor, build_predictor
from serving.predlog import Entry, PredictionLog
from serving.readiness import WorkerReadiness
from serving.redact import build_redactor
from serving.schema import RequestSchema
from serving.settings import ServeSettings

log = logging.getLogger("serving.service")
POSITIVE, NEGATIVE = "positive", "negative"


@dataclass(frozen=True)
class Scored:
    request_id: str
    scores: np.ndarray
    decisions: list[str]


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh random one."""
    if header and len(header) <= 128 and header.isascii() and header.isprintable():
        return header if " " not in header else secrets.token_hex(16)
    return secrets.token_hex(16)


class ScoringService:
    """Holds the model card and, once loaded, the predictor; every scored request goes
    through `score`, which also feeds the metrics and the prediction log."""

    def __init__(self, card: ModelCard, settings: ServeSettings, metrics: ServiceMetrics) -> None:
        self.card, self.settings, self.metrics = card, settings, metrics
        self.schema = RequestSchema(card, settings.max_batch_rows)
        self.git_commit = settings.git_commit or card.git_commit
        self.predictor: Predictor | None = None
        self.predictor_note = "loading"
        self.error: str | None = None
        self.warmup_ms: float | None = None
        self.drift = DriftBins(card, metrics)
        self.readiness = WorkerReadiness(settings.ready_dir, settings.workers)
        salt = settings.log_hash_salt.get_secret_value() if settings.log_hash_salt else None
        redactor = build_redactor(card.log_policy, salt)
        redacted = card.log_policy.columns if redactor and card.log_policy else []
        self.log = PredictionLog(
            settings.prediction_log,
            {
                "model_name": card.name,
                "model_version": card.version,
                "environment": settings.environment,
                **({"track": settings.track} if settings.track else {}),
                **({"redacted": redacted} if redacted else {}),
            },
            sample_rate=settings.prediction_log_sample_rate,
            flush_seconds=settings.prediction_log_flush_seconds,
            max_rows=settings.prediction_log_queue_rows,
            on_drop=metrics.log_dropped.inc,
            redact=redactor,
        )
        metrics.info.labels(
            card.name, card.version, card.run_id, self.git_commit, settings.image_tag
        ).set(1)

    @property
    def ready(self) -> bool:
        """This worker can score (the scoring hot path asks this)."""
        return self.predictor is not None

    def service_ready(self) -> bool:
        """Every worker of the service can score (what /ready reports)."""
        return self.ready and self.readiness.all_ready()

    def load(self) -> None:
        """Deserialize the pipeline, choose the predictor, warm up; runs in a thread."""
        started = time.perf_counter()
        try:
            compiled = load_compiled(self.card) if self.settings.fast_path else None
            predictor: Predictor
            if compiled is not None:  # compiled and checked at export: no sklearn needed
                predictor, note = compiled
            else:
                pipeline = load_pipeline(self.card)
                predictor, note = build_predictor(pipeline, self.card, self.settings.fast_path)
            self.warmup_ms = self._warm_up(predictor)
        except Exception as error:
            self.error = f"loading {self.card.path} failed: {type(error).__name__}: {error}"
            log.exception("model %s failed to load", self.card.path)
            self.metrics.ready.set(0)
            return
        self.predictor, self.predictor_note = predictor, note
        gc.collect()
        gc.freeze()  # the model's objects never become garbage: keep them out of GC passes
        self.metrics.ready.set(1)
        self.readiness.mark_ready()
        log.info(
            "model %s version %s ready in %.2fs (%s)",
            self.card.name,
            self.card.version,
            time.perf_counter() - started,
            note,
        )

    def _warm_up(self, predictor: Predictor) -> float:
        """Score the model's input example through the request parser; the scores must be
        probabilities. Returns the warm-up time in milliseconds."""
        started = time.perf_counter()
        records = self.schema.parse_json(orjson.dumps(self.card.example))
        scores = predictor.scores(Batch.from_records(records, self.card))
        if scores.shape != (len(records),) or not np.all((scores >= 0) & (scores <= 1)):
            raise RuntimeError(f"warm-up gave {scores!r}, not one probability per row")
        return round((time.perf_counter() - started) * 1000, 3)

    def score(self, records: list[dict[str, Any]], route: str, rid: str) -> Scored:
        """Score validated records, count them into the metrics and queue their log lines."""
        assert self.predictor is not None
        batch = Batch.from_records(records, self.card)
        scores = self.predictor.scores(batch)
        positive = (scores >= self.card.threshold).tolist()
        decisions = [POSITIVE if p else NEGATIVE for p in positive]
        score_list = scores.tolist()
        self.metrics.observe_scores(score_list, sum(positive))
        self.drift.count(batch.numeric, batch.categorical, score_list)
        self.log.submit(Entry(rid, time.time(), route, records, score_list, decisions))
        return Scored(rid, scores, decisions)


def start_loading(service: ScoringService) -> threading.Thread:
    """Load the model in the background so /health answers while it loads."""
    thread = threading.Thread(target=service.load, name="model-loader", daemon=True)
    thread.start()
    return thread
