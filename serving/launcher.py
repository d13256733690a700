"""`python -m serving`: run the service with N uvicorn worker processes.

Why not `uvicorn --workers N`: its supervisor binds one socket and hands it to the workers,
which (a) leaves TCP_NODELAY off on accepted connections (uvicorn issue 3149: the listener is
created with proto 0, so asyncio skips the option and keep-alive requests wait ~40 ms on
delayed ACKs) and (b) lets whichever worker wakes first take the connections, so a load
generator's persistent connections can all land on one worker. Here every worker binds its
own SO_REUSEPORT socket created with IPPROTO_TCP: the kernel spreads new connections over the
workers, and accepted sockets get TCP_NODELAY (uvloop, the loop used here, sets it on any TCP
socket; the proto keeps that true on asyncio's loop too).

The launcher also resolves the model once (a registry URI is exported to a local folder
before the workers start), points prometheus_client's multiprocess mode at a fresh folder so
/metrics merges all workers, forwards SIGTERM/SIGINT to the workers exactly once (each drains
its requests and its prediction log), and stops everything if a worker dies: the process
manager (Kubernetes, Docker) restarts the container.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import logging.config
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

from modelops.errors import ModelopsError
from modelops.registry.export import expand_model_uri
from modelops.registry.log_policy import from_params
from serving.model import ModelLoadError, read_card, resolve_model_dir
from serving.redact import build_redactor
from serving.settings import ServeSettings

log = logging.getLogger("serving.launcher")
APP = "serving.app:create_app"
PR_SET_PDEATHSIG = 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve a model. Options override the MODELOPS_* environment variables.",
    )
    parser.add_argument(
        "--model",
        help="model folder, models:/NAME@ALIAS, models:/NAME/VERSION, or a bare alias "
        "(champion) or version number of register.model_name in --params",
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--params", default="params.yaml", help="for a bare alias or version")
    return parser.parse_args(argv)


def reuseport_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, kind, proto)  # proto=IPPROTO_TCP: accepted sockets get NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _check_port_free(host: str, port: int) -> None:
    """Refuse to join a port someone else listens on (SO_REUSEPORT would share it)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            probe.bind(address)
        except OSError as error:
            raise SystemExit(f"error: cannot listen on {host}:{port}: {error.strerror}") from None


def _die_with_parent() -> None:
    """Linux: get SIGTERM if the launcher dies, so no worker outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the service's own `serving.*` loggers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["serving"] = {"handlers": ["default"], "level": level.upper()}
    return config


def run_worker(settings: ServeSettings) -> None:
    """One worker process: its own SO_REUSEPORT socket, one uvicorn server, one app."""
    import uvicorn

    _die_with_parent()
    os.setpgrp()  # Ctrl-C reaches the launcher only; it forwards one SIGTERM
    sock = reuseport_socket(settings.host, settings.port)
    config = uvicorn.Config(
        APP,
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _worker_main() -> None:
    run_worker(ServeSettings())


def _metrics_dir(settings: ServeSettings) -> tuple[Path, bool]:
    """A clean folder for prometheus_client's multiprocess files; True if we created it."""
    if settings.metrics_dir is not None:
        settings.metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*settings.metrics_dir.glob("*.db"), *settings.metrics_dir.glob("ready-*")]:
            stale.unlink()
        return settings.metrics_dir, False
    return Path(tempfile.mkdtemp(prefix="modelops-metrics-")), True


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    overrides = {
        k: v
        for k, v in {
            "model_uri": args.model,
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    try:
        settings = ServeSettings(**overrides)
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            where = ".".join(str(p) for p in problem["loc"]).upper()
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(f"error: MODELOPS_{where}: {message}", file=sys.stderr)
        return 1
    logging.config.dictConfig(log_config(settings.log_level))
    workdir = Path(tempfile.mkdtemp(prefix="modelops-serve-"))
    metrics_dir, own_metrics_dir = _metrics_dir(settings)
    try:
        try:
            source = expand_model_uri(settings.model_uri, args.params)
            params = Path(args.params)
            redaction = from_params(params) if params.is_file() else None
            model_dir = resolve_model_dir(source, workdir, redaction)
            card = read_card(model_dir, settings.model_name)
            salt = settings.log_hash_salt
            build_redactor(card.log_policy, salt.get_secret_value() if salt else None)
        except (ModelLoadError, ModelopsError, OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        _check_port_free(settings.host, settings.port)
        os.environ.update(
            {
                "MODELOPS_MODEL_URI": str(model_dir.resolve()),
                "MODELOPS_HOST": settings.host,
                "MODELOPS_PORT": str(settings.port),
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "MODELOPS_READY_DIR": str(metrics_dir),
                "MODELOPS_WORKERS": str(settings.workers),
            }
        )
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # sklearn's OpenMP threads fight workers
        log.info(
            "serving %s version %s from %s on %s:%d with %d worker(s)",
            card.name,
            card.version,
            source,
            settings.host,
            settings.port,
            settings.workers,
        )
        return _supervise(settings, metrics_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(settings: ServeSettings, metrics_dir: Path) -> int:
    from prometheus_client import multiprocess

    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, name=f"worker-{i}") for i in range(settings.workers)
    ]
    stop = {"signal": 0}

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop["signal"] = stop["signal"] or signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    exit_code = 0
    try:
        for worker in workers:
            worker.start()
        while not stop["signal"]:
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=0.5)
            dead = [w for w in workers if not w.is_alive()]
            if dead:
                for w in dead:
                    log.error(
                        "%s (pid %s) exited with code %s; stopping", w.name, w.pid, w.exitcode
                    )
                exit_code = 1
                break
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.join(settings.graceful_timeout_seconds + 10)
            if worker.is_alive():
                log.error("%s did not stop in time; killing it", worker.name)
                worker.kill()
                worker.join()
            if worker.pid is not None:
                multiprocess.mark_process_dead(worker.pid, str(metrics_dir))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_code
