"""The ceiling for `make bench-serve`: the same uvicorn, no model.

    python -m modelops.bench.ceiling --port 8002 --workers 2 --answer answer.json

Each worker binds its own SO_REUSEPORT socket and runs uvicorn with the service's settings
(uvloop, httptools, no access log), like `python -m serving`; the app is a bare ASGI callable
that reads the request body and returns a fixed answer (the bytes of a real /predict answer,
so both send the same response). No validation, no model, no metrics, no log: what is left is
the HTTP server's own cost, so ours / ceiling says how much of the machine the service uses for
its own work.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

HEADERS = [(b"content-type", b"application/json")]


class ConstantApp:
    """ASGI: read the whole body, answer `answer` (lifespan events acknowledged)."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.headers = [*HEADERS, (b"content-length", str(len(answer)).encode())]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.answer})


def run_worker(host: str, port: int, answer: bytes) -> None:
    """One worker: an SO_REUSEPORT socket and uvicorn configured as the service's workers."""
    import uvicorn

    from serving.launcher import reuseport_socket

    config = uvicorn.Config(
        ConstantApp(answer),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[reuseport_socket(host, port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--answer", type=Path, required=True, help="file holding the answer body")
    args = parser.parse_args(argv)
    answer = args.answer.read_bytes()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=run_worker, args=(args.host, args.port, answer), daemon=True)
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # after the start: workers keep theirs
    signal.sigwait(stop)
    for worker in workers:
        if worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
