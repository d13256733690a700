"""A local container registry: the CNCF distribution registry (Debian's `docker-registry`)
on 127.0.0.1, for `make push` and the tests when no remote registry is at hand.

`start` writes its config under `root`, starts it detached (its own session, so it outlives
the command that started it; `make registry-stop` or `stop` ends it) and waits until `/v2/`
answers. A registry already answering on that port is reused. It listens on the loopback
only and speaks plain HTTP there, as registries on 127.0.0.0/8 are trusted by Docker and
pushed to with `--tls-verify=false` by podman.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import yaml

from modelops.deploy.local.procs import (
    LocalEnvError,
    answers_ok,
    is_ours,
    start_detached,
    wait_until,
)

DEFAULT_PORT = 5000


def config(root: Path, port: int) -> dict[str, object]:
    """The registry's config: filesystem storage under `root`, HTTP on 127.0.0.1:`port`."""
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }


def start(root: Path, port: int = DEFAULT_PORT, timeout_s: float = 20) -> str:
    """Start (or find running) the registry; returns its host:port."""
    address = f"127.0.0.1:{port}"
    if answers_ok(f"http://{address}/v2/"):
        return address
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise LocalEnvError(
            "no container registry program (docker-registry) is installed: `make system-deps` "
            "installs Debian's docker-registry, or point REGISTRY at a registry you have"
        )
    root.mkdir(parents=True, exist_ok=True)
    conf = root / f"config-{port}.yml"
    conf.write_text(yaml.safe_dump(config(root, port)))
    log = root / f"registry-{port}.log"
    pid = start_detached([binary, "serve", str(conf)], log=log)
    (root / f"registry-{port}.pid").write_text(str(pid))
    wait_until(
        lambda: answers_ok(f"http://{address}/v2/"),
        timeout_s=timeout_s,
        what=f"the registry on {address}",
        alive=lambda: is_ours(pid, str(conf)),
        log=log,
    )
    return address


def stop(root: Path, port: int = DEFAULT_PORT) -> bool:
    """Stop the registry `start` left running on `port`; False when none was running."""
    pidfile = root / f"registry-{port}.pid"
    if not pidfile.is_file():
        return False
    pid = int(pidfile.read_text())
    pidfile.unlink()
    if not is_ours(pid, str(root / f"config-{port}.yml")):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not is_ours(pid, str(root)), timeout_s=10, what="registry stop")
    return True
