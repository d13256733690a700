"""`modelops deploy canary --target local`: the canary controller run against the local rehearsal.

Champion (stable) and challenger (canary) come from the MLflow registry; the local
environment serves both, nginx splits the traffic (`NginxRouter`), the local Prometheus is
the metric provider, the registry promoter records the outcome, and the load generator sends
real rows through nginx for as long as the controller runs. On a first deploy (no champion)
only the challenger's service starts and the controller's smoke test runs against it.

A rehearsal killed midway leaves its processes running (they play the cluster) and its
state in the run folder; `resume=True` finds both again and lets the controller finish. If
the processes are gone too, they are started again from the registry versions the state
names: the same model content gives the same local image, so the state still applies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.config import Params
from modelops.deploy.controller import STATE_FILE, Outcome, resume_canary, run_canary
from modelops.deploy.local.env import CANARY, STABLE, LocalEnv, prediction_log_path
from modelops.deploy.local.loadgen import LoadGenerator, records_from_table
from modelops.deploy.local.procs import LocalEnvError
from modelops.deploy.metrics import PrometheusMetricProvider
from modelops.deploy.promoter import RegistryPromoter
from modelops.deploy.shadow import PredictionLogs
from modelops.deploy.smoke import records_from_model, smoke_test
from modelops.deploy.state import Release, StateError, load_state
from modelops.errors import Refused
from modelops.registry.client import CHALLENGER, CHAMPION, RegistryClient

log = logging.getLogger(__name__)
LOAD_FILE = "load.json"


@dataclass(frozen=True)
class RehearsalConfig:
    """What to rehearse and how hard to drive it."""

    run_dir: Path
    model_name: str
    canary: str = CHALLENGER  # version number or alias
    stable: str = CHAMPION  # version number or alias; a missing alias: first deploy
    rows: Path | None = None  # table of inputs for the load; None: the model's input example
    rps: float = 80.0
    batch: int = 10
    params_path: Path = Path("params.yaml")
    prometheus_template: Path = Path("infra/local/prometheus/prometheus.yml")
    env_label: str = "local"
    keep_env: bool = False
    service_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RehearsalResult:
    outcome: Outcome
    load: dict[str, Any]
    run_dir: Path
    nginx_url: str
    prometheus_url: str
    kept: bool


def _start(config: RehearsalConfig, stable: str | None, canary: str) -> LocalEnv:
    name = config.model_name
    return LocalEnv.start(
        config.run_dir,
        stable=None if stable is None else f"models:/{name}/{stable}",
        canary=f"models:/{name}/{canary}",
        params_path=config.params_path,
        prometheus_template=config.prometheus_template,
        env_label=config.env_label,
        service_env=config.service_env,
    )


def _fresh(config: RehearsalConfig, registry: RegistryClient) -> tuple[LocalEnv, Release]:
    name = config.model_name
    canary = registry.resolve(name, config.canary)
    if canary is None:
        raise Refused(
            f"models:/{name}@{config.canary} does not exist: register a challenger first "
            "(`make run`), or pass a version number"
        )
    stable = registry.resolve(name, config.stable)
    if stable == canary:
        raise Refused(
            f"version {canary} of {name} is both {config.stable} and {config.canary}: there "
            "is nothing to roll out; train and register a new challenger (`make run`)"
        )
    env = _start(config, stable, canary)
    services = env.services
    try:
        release = Release(
            model_name=name,
            canary_version=canary,
            canary_image=services[CANARY].image,
            stable_version=stable,
            stable_image=services[STABLE].image if stable is not None else None,
        )
    except BaseException:
        env.stop()
        raise
    return env, release


def _resumed(config: RehearsalConfig) -> LocalEnv:
    release = load_state(config.run_dir / STATE_FILE).release
    env = LocalEnv.attach(config.run_dir)
    if env is not None:
        return env
    log.warning("the rehearsal's processes are gone; starting them again from the registry")
    env = _start(config, release.stable_version, release.canary_version)
    images = {t: s.image for t, s in env.services.items()}
    expected = {CANARY: release.canary_image}
    if release.stable_image is not None:
        expected[STABLE] = release.stable_image
    if images != expected:
        env.stop()
        raise LocalEnvError(
            f"the registry's versions now give images {images}, the saved canary state names "
            f"{expected}: the models changed; remove {config.run_dir} and start again"
        )
    return env


def load_records(config: RehearsalConfig, env: LocalEnv) -> list[dict[str, Any]]:
    """Input rows for the load: the table given (the model's columns), else its example."""
    from serving.model import read_card

    model_dir = Path(env.services[CANARY].model_dir)
    if config.rows is None:
        return records_from_model(model_dir)
    columns = [f.name for f in read_card(model_dir).features]
    return records_from_table(config.rows, columns)


def rehearse(
    params: Params, config: RehearsalConfig, registry: RegistryClient, *, resume: bool = False
) -> RehearsalResult:
    """Run (or resume) a canary against the local rehearsal; returns the controller's outcome."""
    state_file = config.run_dir / STATE_FILE
    if not resume and state_file.is_file():
        previous = load_state(state_file)
        if not previous.phase.terminal:
            raise StateError(
                f"{state_file}: the canary of {previous.release.model_name} version "
                f"{previous.release.canary_version} is still {previous.phase.value}; finish it "
                "with `modelops deploy canary --target local --resume`"
            )
    if resume:
        env, release = _resumed(config), None
    else:
        env, release = _fresh(config, registry)
    kept = False
    try:
        records = load_records(config, env)
        canary_url = env.services[CANARY].url
        logs = {t: prediction_log_path(config.run_dir, t) for t in (STABLE, CANARY)}
        options: dict[str, Any] = {
            "smoke": lambda _: smoke_test(canary_url, records, params.canary.smoke_requests),
            "shadow": PredictionLogs(logs),  # nginx mirrors; both services log request ids
        }
        metrics = PrometheusMetricProvider(env.prometheus_url, params.canary.query_timeout_seconds)
        promoter = RegistryPromoter(registry)
        with LoadGenerator(env.url, records, rps=config.rps, batch=config.batch) as load:
            if release is None:
                outcome = resume_canary(
                    env.router, metrics, promoter, params, config.run_dir, **options
                )
            else:
                outcome = run_canary(
                    release,
                    env.router,
                    metrics,
                    promoter,
                    params,
                    env.env_label,
                    config.run_dir,
                    **options,
                )
        stats = load.stats()
        (config.run_dir / LOAD_FILE).write_text(json.dumps(stats, indent=2) + "\n")
        kept = config.keep_env
        return RehearsalResult(
            outcome, stats, config.run_dir, env.url, env.prometheus_url, kept=kept
        )
    finally:
        if not kept:
            env.stop()
