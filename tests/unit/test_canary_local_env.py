"""The local rehearsal's pieces without starting it: image digests, the generated nginx and
Prometheus configs (checked by the real `nginx -t` and `promtool`), NginxRouter's refusals,
and the process guard that never signals a pid it did not start."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from modelops.deploy.gitops import IMAGE_PATTERN, TrafficSplit
from modelops.deploy.local.images import folder_digest, local_image, repository_name
from modelops.deploy.local.nginx import (
    NginxLayout,
    NginxRouter,
    check_config,
    prepare,
    render_config,
)
from modelops.deploy.local.procs import LocalEnvError, find_binary, is_ours, stop_all
from modelops.deploy.local.prometheus import render_config as prometheus_config
from modelops.errors import RouterError
from tests.conftest import REPO_ROOT

STABLE = "localhost/credit-scoring@sha256:" + "a" * 64
CANARY = "localhost/credit-scoring@sha256:" + "b" * 64
BACKENDS = {STABLE: "127.0.0.1:18001", CANARY: "127.0.0.1:18002"}


def model_folder(root: Path) -> Path:
    (root / "extra_files").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.skops").write_bytes(b"\x00model bytes")
    (root / "extra_files" / "reference.json").write_text("{}")
    return root


def test_image_is_a_digest_of_the_model_content_only(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    image = local_image(folder, "Credit Scoring")
    assert IMAGE_PATTERN.fullmatch(image)
    assert image.startswith("localhost/credit-scoring@sha256:")
    (folder / "export.json").write_text('{"exported_at": "now"}')  # provenance, not content
    assert local_image(folder, "Credit Scoring") == image
    (folder / "model.skops").write_bytes(b"\x00other bytes")
    assert local_image(folder, "Credit Scoring") != image
    (folder / "model.skops").write_bytes(b"\x00model bytes")
    (folder / "extra_files" / "reference.json").rename(folder / "reference.json")
    assert folder_digest(folder) != image.rsplit(":", 1)[1]  # paths count, not only bytes
    assert repository_name("__") == "model"


def layout(tmp_path: Path) -> NginxLayout:
    return NginxLayout(tmp_path / "nginx", tmp_path / "logs", 18080, find_binary("nginx"))


@pytest.mark.parametrize(
    ("split", "servers"),
    [
        (TrafficSplit(STABLE, "1"), {"127.0.0.1:18001 weight=100"}),
        (
            TrafficSplit(STABLE, "1", CANARY, "2", 5),
            {"127.0.0.1:18001 weight=95", "127.0.0.1:18002 weight=5"},
        ),
        (TrafficSplit(STABLE, "1", CANARY, "2", 100), {"127.0.0.1:18002 weight=100"}),
        (TrafficSplit(CANARY, "2"), {"127.0.0.1:18002 weight=100"}),  # promoted
        (None, set()),  # first deploy, nothing routed yet
    ],
)
def test_nginx_config_weights_pass_nginx_t(
    tmp_path: Path, split: TrafficSplit | None, servers: set[str]
) -> None:
    where = layout(tmp_path)
    prepare(where)
    conf = where.root / "nginx.conf"
    conf.write_text(render_config(where, split, BACKENDS, generation=7))
    check_config(where, conf)  # the real nginx accepts it, as any user (paths in the run dir)
    text = conf.read_text()
    lines = [line.split() for line in text.splitlines()]
    found = {" ".join(w[1:3]) for w in lines if w[:1] == ["server"] and len(w) > 2}
    assert found == servers
    status = json.loads(text.split("return 200 '", 1)[1].split("'", 1)[0])
    assert status == {"generation": 7, "split": split.to_json() if split else None}
    if split is None:
        assert "return 503" in text


def test_router_refuses_an_image_no_service_runs_and_keeps_the_split(tmp_path: Path) -> None:
    where = layout(tmp_path)
    prepare(where)
    record = {"generation": 3, "split": TrafficSplit(STABLE, "1").to_json()}
    where.split_file.write_text(json.dumps(record))
    router = NginxRouter(where, {STABLE: BACKENDS[STABLE]})
    with pytest.raises(RouterError, match="no local service runs the canary image"):
        router.apply(TrafficSplit(STABLE, "1", CANARY, "2", 5))
    assert json.loads(where.split_file.read_text()) == record
    assert router.current() == TrafficSplit(STABLE, "1")
    with pytest.raises(RouterError, match="nginx is not running"):
        router.apply(TrafficSplit(STABLE, "1"))  # known image, but no nginx pid
    assert json.loads(where.split_file.read_text()) == record


def test_router_without_a_rehearsal_says_so(tmp_path: Path) -> None:
    router = NginxRouter(layout(tmp_path), BACKENDS)
    with pytest.raises(RouterError, match="no local rehearsal runs"):
        router.current()


def test_prometheus_config_from_the_committed_template_passes_promtool(tmp_path: Path) -> None:
    template = REPO_ROOT / "infra" / "local" / "prometheus" / "prometheus.yml"
    config = prometheus_config(template, {"stable": 18001, "canary": 18002}, "staging", 19090, 1)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["modelops"]["static_configs"] == [
        {"targets": ["127.0.0.1:18001"], "labels": {"track": "stable", "env": "staging"}},
        {"targets": ["127.0.0.1:18002"], "labels": {"track": "canary", "env": "staging"}},
    ]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:19090"]}]
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "1s"
    assert config["rule_files"] == [str(template.parent / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    checked = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "modelops-recording.yml" in checked.stdout  # the repository's rules were checked
    assert "modelops-alerts.yml" in checked.stdout


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(LocalEnvError, match="apt-get install nginx prometheus"):
        find_binary("nginx", str(tmp_path / "no-nginx"))


def test_only_processes_naming_the_run_folder_are_signalled(tmp_path: Path) -> None:
    marker = str(tmp_path / "run")
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert is_ours(ours.pid, marker) and not is_ours(other.pid, marker)
        stop_all([ours.pid, other.pid], marker, timeout_s=10)
        assert not is_ours(ours.pid, marker)  # ended (and reaped)
        assert other.poll() is None  # a pid without the marker is never touched
    finally:
        for process in (ours, other):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_process_checks_use_psutil_not_proc(tmp_path: Path) -> None:
    """macOS has no /proc: the pid checks go through psutil, and see a zombie as gone."""
    import modelops.deploy.local.procs as procs

    source = Path(procs.__file__).read_text()
    assert "/proc/" not in source
    marker = str(tmp_path / "run")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(0)", marker])
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        # Not reaped yet: psutil sees a zombie, which is not a running process of ours.
        assert procs.command_line(child.pid) is None
        assert not procs.is_ours(child.pid, marker)
    finally:
        child.wait()
