"""`LocalEnv`: the rehearsal's processes under one run folder, started, found again, stopped.

    <run dir>/env.json                what runs: services (track, image, model version, port,
                                      pid), nginx and Prometheus (port, pid)
    <run dir>/models/<track>/         the model folders the services load (exported once)
    <run dir>/nginx/                  nginx.conf, split.json (what is routed), pid, temp paths
    <run dir>/prometheus/             prometheus.yml (from infra/local/prometheus), its TSDB
    <run dir>/logs/                   every process's output, the services' prediction logs

The processes run detached from the caller (see procs.py): `LocalEnv.attach(run_dir)` finds
them again after the controller was killed, as a restarted controller finds its cluster.
`stop()` (or leaving the `with` block) ends them all.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from modelops.deploy.gitops import KEYS, TrafficSplit, parse_state, write_bytes_atomic
from modelops.deploy.local.images import local_image
from modelops.deploy.local.nginx import NginxLayout, NginxRouter, start_nginx
from modelops.deploy.local.procs import (
    LocalEnvError,
    answers_ok,
    find_binary,
    free_port,
    is_ours,
    start_detached,
    stop_all,
    wait_until,
)
from modelops.deploy.local.prometheus import render_config, start_prometheus

MANIFEST = "env.json"
FRESH_PARTS = ("models", "nginx", "prometheus", "logs")
STABLE, CANARY = "stable", "canary"
DEFAULT_TEMPLATE = Path("infra/local/prometheus/prometheus.yml")


@dataclass(frozen=True)
class Service:
    """One model service of the rehearsal."""

    track: str
    image: str
    model_name: str
    model_version: str
    model_dir: str
    source: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Manifest:
    run_dir: str
    env_label: str
    nginx_port: int
    nginx_pid: int
    nginx_binary: str
    prometheus_port: int
    prometheus_pid: int
    services: dict[str, Service] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        services = {track: Service(**s) for track, s in data.pop("services").items()}
        return cls(**data, services=services)


def _export(spec: str, target: Path, params_path: Path) -> tuple[str, str]:
    """Export a model (registry URI, bare alias/version, or folder) into `target` as
    `modelops export-model` does for the image (log redaction policy included, so the
    folder, and its digest, are the image's); returns (model name, version) as the
    registry knows them."""
    from modelops.registry.client import open_registry
    from modelops.registry.export import expand_model_uri, export_model
    from modelops.registry.log_policy import from_params
    from modelops.registry.model_source import is_registry_uri
    from modelops.registry.tracking import TrackingSettings

    uri = expand_model_uri(spec, params_path)
    registry = open_registry(TrackingSettings()) if is_registry_uri(uri) else None
    info = export_model(uri, target, registry, force=True, redaction=from_params(params_path))
    return info.model_name, info.model_version


class LocalEnv:
    """The running rehearsal of one run folder."""

    def __init__(self, run_dir: Path, manifest: Manifest) -> None:
        self.run_dir = run_dir
        self.manifest = manifest

    # -- starting --------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        run_dir: Path,
        *,
        stable: str | None,
        canary: str,
        params_path: Path = Path("params.yaml"),
        prometheus_template: Path = DEFAULT_TEMPLATE,
        env_label: str = "local",
        workers: int = 1,
        scrape_interval_s: float = 1.0,
        service_env: dict[str, str] | None = None,
        nginx: str | None = None,
        prometheus: str | None = None,
        timeout_s: float = 120.0,
    ) -> LocalEnv:
        """Export the models, start the services, nginx (stable at 100 %) and Prometheus.

        `stable` is None on a first deploy: only the canary's service starts and nginx
        answers 503 until the controller routes traffic. On any failure, whatever was
        started is stopped again before the error is raised.
        """
        run_dir = Path(run_dir).resolve()
        nginx_binary = find_binary("nginx", nginx)
        prometheus_binary = find_binary("prometheus", prometheus)
        if (run_dir / MANIFEST).is_file():
            stale = cls.load(run_dir)
            stale.stop()
        for part in FRESH_PARTS:  # an earlier run's TSDB would mix its series into this one
            shutil.rmtree(run_dir / part, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        logs = run_dir / "logs"
        logs.mkdir(exist_ok=True)
        manifest = Manifest(str(run_dir), env_label, free_port(), 0, nginx_binary, free_port(), 0)
        env = cls(run_dir, manifest)
        try:
            specs = {STABLE: stable, CANARY: canary}
            models = {}
            for track, spec in specs.items():
                if spec is not None:
                    target = run_dir / "models" / track
                    name, version = _export(spec, target, params_path)
                    models[track] = (spec, target, name, version, local_image(target, name))
            if STABLE in models and models[STABLE][4] == models[CANARY][4]:
                raise LocalEnvError(
                    f"stable ({stable}) and canary ({canary}) are the same model "
                    f"(image {models[CANARY][4]}): there is nothing to roll out"
                )
            for track, (spec, target, name, version, image) in models.items():
                port = free_port()
                pid = start_detached(
                    [sys.executable, "-m", "serving", "--model", str(target),
                     "--port", str(port), "--workers", str(workers)],
                    log=logs / f"{track}.log",
                    env=_service_env(track, env_label, image, logs, service_env),
                )  # fmt: skip
                manifest.services[track] = Service(
                    track, image, name, version, str(target), spec, port, pid
                )
                env._save()
            # nginx and Prometheus start while the services load their models.
            first = manifest.services.get(STABLE)
            split = TrafficSplit(first.image, first.model_version) if first else None
            manifest.nginx_pid = start_nginx(env.layout, split, env.backends)
            env._save()
            config = render_config(
                prometheus_template,
                {t: s.port for t, s in manifest.services.items()},
                env_label,
                manifest.prometheus_port,
                scrape_interval_s,
            )
            manifest.prometheus_pid = start_prometheus(
                prometheus_binary,
                run_dir / "prometheus",
                logs / "prometheus.log",
                config,
                manifest.prometheus_port,
            )
            env._save()
            for service in manifest.services.values():
                env._wait_service(service, timeout_s)
            wait_until(
                env._scraping,
                timeout_s=30,
                what=f"Prometheus scraping {sorted(manifest.services)}",
                log=logs / "prometheus.log",
            )
        except BaseException:
            env.stop()
            raise
        return env

    def _wait_service(self, service: Service, timeout_s: float) -> None:
        wait_until(
            lambda: answers_ok(f"{service.url}/ready"),
            timeout_s=timeout_s,
            what=f"the {service.track} service ({service.source}) on {service.url}",
            alive=lambda: is_ours(service.pid, str(self.run_dir)),
            log=self.run_dir / "logs" / f"{service.track}.log",
        )

    def _scraping(self) -> bool:
        """True once Prometheus has scraped every service successfully."""
        try:
            response = httpx.get(f"{self.prometheus_url}/api/v1/targets", timeout=2)
            targets = response.json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        up = {t["labels"].get("track") for t in targets if t.get("health") == "up"}
        return set(self.manifest.services) <= up

    def _save(self) -> None:
        text = json.dumps(self.manifest.to_json(), indent=2) + "\n"
        write_bytes_atomic(self.run_dir / MANIFEST, text.encode())

    # -- finding it again ------------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: Path) -> LocalEnv:
        """The environment recorded in `run_dir` (running or not)."""
        run_dir = Path(run_dir).resolve()
        path = run_dir / MANIFEST
        try:
            manifest = Manifest.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LocalEnvError(
                f"no local rehearsal in {run_dir} (no {MANIFEST}); start one with "
                "`modelops deploy canary --target local`"
            ) from None
        except (ValueError, TypeError, KeyError) as error:
            raise LocalEnvError(f"{path} is not a rehearsal manifest ({error})") from None
        return cls(run_dir, manifest)

    @classmethod
    def attach(cls, run_dir: Path) -> LocalEnv | None:
        """The environment of `run_dir` if every one of its processes still runs, else None."""
        try:
            env = cls.load(run_dir)
        except LocalEnvError:
            return None
        return env if all(env.alive().values()) else None

    def alive(self) -> dict[str, bool]:
        marker = str(self.run_dir)
        state = {t: is_ours(s.pid, marker) for t, s in self.manifest.services.items()}
        state["nginx"] = is_ours(self.manifest.nginx_pid, marker)
        state["prometheus"] = is_ours(self.manifest.prometheus_pid, marker)
        return state

    # -- using it --------------------------------------------------------------------------

    @property
    def layout(self) -> NginxLayout:
        return NginxLayout(
            self.run_dir / "nginx",
            self.run_dir / "logs",
            self.manifest.nginx_port,
            self.manifest.nginx_binary,
        )

    @property
    def backends(self) -> dict[str, str]:
        """image -> the address of the service that runs it."""
        return {s.image: s.address for s in self.manifest.services.values()}

    @property
    def router(self) -> NginxRouter:
        return NginxRouter(self.layout, self.backends)

    @property
    def url(self) -> str:
        """Where clients send requests: nginx."""
        return self.layout.url

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.manifest.prometheus_port}"

    @property
    def services(self) -> dict[str, Service]:
        return dict(self.manifest.services)

    @property
    def env_label(self) -> str:
        return self.manifest.env_label

    # -- stopping --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop nginx, the services and Prometheus (each only if it is still ours)."""
        pids = [self.manifest.nginx_pid, self.manifest.prometheus_pid]
        stop_all([*pids, *(s.pid for s in self.manifest.services.values())], str(self.run_dir))

    def __enter__(self) -> LocalEnv:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def _service_env(
    track: str, env_label: str, image: str, logs: Path, extra: dict[str, str] | None
) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {
        **os.environ,
        "PATH": path,
        "OMP_NUM_THREADS": "1",
        "MODELOPS_TRACK": track,
        "MODELOPS_ENVIRONMENT": env_label,
        "MODELOPS_IMAGE_TAG": image,
        "MODELOPS_PREDICTION_LOG": str(prediction_log_path(logs.parent, track)),
        **(extra or {}),
    }


def prediction_log_path(run_dir: Path, track: str) -> Path:
    """The folder where the rehearsal's `track` service writes its prediction log (day
    partitions)."""
    return Path(run_dir) / "logs" / f"{track}-predictions"


def apply_desired_state(run_dir: Path, values: Mapping[str, Any]) -> TrafficSplit:
    """Route the GitOps desired state `values` (what deploy.auto.tfvars.json holds) through
    the rehearsal running in `run_dir`: what the terraform stand-in does on `apply`."""
    state = {key: values[key] for key in KEYS if key in values}
    split = parse_state(state, f"the desired state for the rehearsal in {run_dir}")
    LocalEnv.load(run_dir).router.apply(split)
    return split
