"""nginx as the rehearsal's traffic splitter, and `NginxRouter`, the local `Router`.

The generated nginx.conf (in the run folder, so nginx runs as any user) has one upstream with
a weighted server per live track: nginx's smooth weighted round robin sends exactly
`canary_weight` requests in 100 to the canary. Services are addressed by image: the router
knows which local service runs which image (the run's manifest), so a split naming the
challenger's image as stable (after promotion) sends all traffic to the service that runs it.

`apply` is safe the way `terraform apply` is: the new config is checked with `nginx -t`
first, installed atomically, nginx reloads on SIGHUP, and `apply` returns only once the new
configuration is answering (a status location returns the config's generation) and every
worker of the old configuration has exited; otherwise the previous config is put back and
RouterError is raised. The split is recorded in split.json (what `current()` returns).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelops.deploy.gitops import TrafficSplit, parse_state, write_bytes_atomic
from modelops.deploy.local.procs import LocalEnvError, log_tail, start_detached, wait_until
from modelops.errors import RouterError

STATUS_PATH = "/__modelops/split"
MIRROR_PATH = "/__modelops/mirror"
# Every request carries an id to both tracks: the client's X-Request-ID, else nginx's own
# $request_id (a mirror subrequest shares its parent's variables, so the copy has the same id).
REQUEST_ID_MAP = """  map $http_x_request_id $modelops_request_id {
    ""      $request_id;
    default $http_x_request_id;
  }
"""


def mirror_split(percent: int) -> str:
    """Which requests are mirrored: `percent` of them, chosen by request id."""
    return (
        '  split_clients "${modelops_request_id}" $modelops_mirrored {\n'
        f'    {percent}% "1";\n'
        '    *   "";\n'
        "  }\n"
    )


def render_mirror_location(canary_address: str) -> str:
    """The internal location the mirror subrequest goes to: the canary, answer discarded."""
    return f"""    location = {MIRROR_PATH} {{
      internal;
      if ($modelops_mirrored = "") {{
        return 204;
      }}
      proxy_pass http://{canary_address}$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Request-ID $modelops_request_id;
      proxy_set_header X-Modelops-Mirrored "1";
      proxy_connect_timeout 2s;
      proxy_read_timeout 10s;
    }}
"""


UPSTREAM = "modelops_model"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class NginxLayout:
    """Where one rehearsal's nginx keeps its files, and where it listens."""

    root: Path  # <run dir>/nginx
    log_dir: Path
    port: int
    binary: str

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def split_file(self) -> Path:
        return self.root / "split.json"

    @property
    def error_log(self) -> Path:
        return self.log_dir / "nginx-error.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, conf: Path) -> list[str]:
        """nginx with every path in the run folder (-e: the log used before the config)."""
        return [self.binary, "-p", str(self.root), "-c", str(conf), "-e", str(self.error_log)]


def render_config(
    layout: NginxLayout,
    split: TrafficSplit | None,
    backends: Mapping[str, str],
    generation: int,
) -> str:
    """nginx.conf for `split`: weighted servers for the live tracks (an upstream needs weight
    >= 1, so a track at 0 % is left out); 503 for every request when nothing is deployed."""
    temp = layout.root / "temp"
    mirror_location = ""
    status = {"generation": generation, "split": split.to_json() if split else None}
    # Validated image references and versions hold no quote, backslash or '$'.
    status_json = json.dumps(status, separators=(",", ":"))
    if split is None:
        upstream = ""
        route = (
            "default_type application/json;\n"
            '      return 503 \'{"detail": "nothing is deployed yet"}\';'
        )
    else:
        servers = [(split.stable_image, split.stable_weight)]  # mirroring sends no user traffic
        if split.canary_image is not None:
            servers.append((split.canary_image, split.canary_weight))
        lines = [
            f"    server {backends[image]} weight={weight} max_fails=0;"
            for image, weight in servers
            if weight > 0
        ]
        # Idle upstream connections close on nginx's side first (uvicorn closes them after
        # 5 s): a request sent on a connection the service is closing would be a 502.
        keepalive = "    keepalive 32;\n    keepalive_timeout 2s;\n"
        upstream = (
            f"  upstream {UPSTREAM} {{\n"
            + "\n".join(lines)
            + "\n"
            + keepalive
            + "  }\n"
            + REQUEST_ID_MAP
        )
        mirror = ""
        if split.canary_mirror_percent > 0 and split.canary_image is not None:
            upstream += mirror_split(split.canary_mirror_percent)
            mirror = f"mirror {MIRROR_PATH};\n      "
            mirror_location = render_mirror_location(backends[split.canary_image])
        route = (
            f"{mirror}proxy_pass http://{UPSTREAM};\n"
            "      proxy_http_version 1.1;\n"
            '      proxy_set_header Connection "";\n'
            "      proxy_set_header Host $host;\n"
            "      proxy_set_header X-Request-ID $modelops_request_id;\n"
            "      proxy_next_upstream off;\n"
            "      add_header X-Modelops-Upstream $upstream_addr always;"
        )
    # As root the workers would drop to `nobody`, who cannot write the run folder's temp
    # paths; a rehearsal runs as the developer, so the workers keep the caller's user.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "\n".join(f"  {name}_temp_path {temp / name};" for name in TEMP_DIRS)
    return f"""# Generated by modelops (local canary rehearsal), generation {generation}.
# Rewritten and reloaded by NginxRouter on every weight change; do not edit.
daemon off;
master_process on;
worker_processes 1;
worker_shutdown_timeout 10s;
pid {layout.pid_file};
error_log {layout.error_log} warn;
{user}
events {{
  worker_connections 1024;
}}

http {{
  access_log off;
{temp_paths}
{upstream}
  server {{
    listen 127.0.0.1:{layout.port};
    location = {STATUS_PATH} {{
      default_type application/json;
      return 200 '{status_json}';
    }}
    location / {{
      {route}
    }}
{mirror_location}  }}
}}
"""


def _live_generation(layout: NginxLayout) -> int | None:
    """The generation the status location answers with, on a fresh connection."""
    try:
        response = httpx.get(layout.url + STATUS_PATH, timeout=2)
        return int(response.json()["generation"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _children(pid: int) -> set[int]:
    """Pids whose parent is `pid` (nginx's workers)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def check_config(layout: NginxLayout, conf: Path) -> None:
    """`nginx -t` on a config file; RouterError with nginx's message when it is invalid."""
    result = subprocess.run(
        [*layout.command(conf), "-t", "-q"], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise RouterError(f"nginx refused the generated config {conf}: {result.stderr.strip()}")


def prepare(layout: NginxLayout) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    for name in TEMP_DIRS:
        (layout.root / "temp" / name).mkdir(parents=True, exist_ok=True)


def start_nginx(
    layout: NginxLayout,
    split: TrafficSplit | None,
    backends: Mapping[str, str],
    timeout_s: float = 20.0,
) -> int:
    """Write the first config (generation 1), start nginx in the foreground of its own
    session, wait until it answers; returns the master's pid."""
    prepare(layout)
    layout.conf.write_text(render_config(layout, split, backends, generation=1))
    try:
        check_config(layout, layout.conf)
    except RouterError as error:
        raise LocalEnvError(str(error)) from None
    _write_split(layout, split, generation=1)
    pid = start_detached(layout.command(layout.conf), log=layout.log_dir / "nginx.out")
    wait_until(
        lambda: _live_generation(layout) == 1,
        timeout_s=timeout_s,
        what=f"nginx on {layout.url}",
        alive=lambda: _alive(pid),
        log=layout.error_log,
    )
    return pid


def _write_split(layout: NginxLayout, split: TrafficSplit | None, generation: int) -> None:
    record = {"generation": generation, "split": split.to_json() if split else None}
    write_bytes_atomic(layout.split_file, (json.dumps(record, indent=2) + "\n").encode())


def _read_split(layout: NginxLayout) -> tuple[TrafficSplit | None, int]:
    try:
        record = json.loads(layout.split_file.read_text())
    except FileNotFoundError:
        raise RouterError(
            f"{layout.split_file} is missing: no local rehearsal runs in {layout.root.parent}"
        ) from None
    split = record.get("split")
    return (parse_state(split, str(layout.split_file)) if split else None), int(
        record["generation"]
    )


class NginxRouter:
    """The Router of the local rehearsal: weights in nginx.conf, reload, verify."""

    def __init__(
        self, layout: NginxLayout, backends: Mapping[str, str], reload_timeout_s: float = 30.0
    ) -> None:
        self.layout = layout
        self.backends = dict(backends)
        self.reload_timeout_s = reload_timeout_s

    def current(self) -> TrafficSplit:
        split, _ = _read_split(self.layout)
        if split is None:
            raise RouterError(
                f"nothing is routed yet in {self.layout.root.parent}: no stable was deployed"
            )
        return split

    def apply(self, split: TrafficSplit) -> None:
        if not isinstance(split, TrafficSplit):
            raise RouterError(f"apply() takes a TrafficSplit, got {type(split).__name__}")
        for role, image in (("stable", split.stable_image), ("canary", split.canary_image)):
            if image is not None and image not in self.backends:
                raise RouterError(
                    f"no local service runs the {role} image {image}; this rehearsal runs "
                    + ", ".join(sorted(self.backends))
                )
        with self._lock():
            _, generation = _read_split(self.layout)
            self._reload(split, generation + 1)
            _write_split(self.layout, split, generation + 1)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One apply at a time, across processes (controller, terraform stand-in)."""
        with (self.layout.root / "apply.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _master(self) -> int:
        try:
            pid = int(self.layout.pid_file.read_text().strip())
        except (OSError, ValueError):
            raise RouterError(
                f"nginx is not running for {self.layout.root.parent} (no pid in "
                f"{self.layout.pid_file}); start the rehearsal again"
            ) from None
        if not _alive(pid):
            raise RouterError(f"nginx (pid {pid}) is not running; start the rehearsal again")
        return pid

    def _reload(self, split: TrafficSplit, generation: int) -> None:
        layout = self.layout
        candidate = layout.root / f"nginx.conf.{generation}.tmp"
        candidate.write_text(render_config(layout, split, self.backends, generation))
        try:
            check_config(layout, candidate)
            master = self._master()
            previous = layout.conf.read_bytes()
            old_workers = _children(master)
            os.replace(candidate, layout.conf)
        finally:
            candidate.unlink(missing_ok=True)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + self.reload_timeout_s
        while time.monotonic() < deadline:
            live = _live_generation(layout) == generation
            if live and not any(_alive(pid) for pid in old_workers):
                return
            time.sleep(0.05)
        write_bytes_atomic(layout.conf, previous)
        os.kill(master, signal.SIGHUP)
        raise RouterError(
            f"nginx did not make generation {generation} live within "
            f"{self.reload_timeout_s:g}s; the previous config was put back"
            + log_tail(layout.error_log)
        )
