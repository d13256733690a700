"""The service image, for real: built from the Dockerfile with a model exported by
`modelops export-model`, pushed to a registry, pulled by the digest the registry returned,
and run the way production should run it: read-only root filesystem, every capability
dropped, no privilege gain, the prediction log on a volume (the only writable place).

One build (module scope; the engine's layer cache makes a rebuild cheap) serves every test;
they run in file order on one worker (xdist_group), the last one stops the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelops.deploy.engine import Engine
from modelops.deploy.image import Pushed, build_image, plan_image, push_image
from modelops.deploy.local.procs import free_port, wait_until
from serving.model import load_pipeline, read_card
from serving.predictor import Batch
from tests.fixtures.images import (  # noqa: F401 (fixtures)
    base_image,
    build_context,
    container_engine,
    container_registry,
    head_commit,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving-image")]
UID = 10001


@dataclass
class Image:
    pushed: Pushed
    model: Path
    commit: str
    run_id: str


@dataclass
class Running:
    name: str
    url: str
    logs: Path


@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory,
    trained_model: dict[str, Any],
    container_engine: Engine,  # noqa: F811
    base_image: str,  # noqa: F811
    container_registry: str,  # noqa: F811
) -> Image:
    context = build_context(tmp_path_factory.mktemp("image") / "context")
    model = context / "build" / "model"
    export = subprocess.run(
        [str(Path(sys.executable).parent / "modelops"), "export-model",
         "--model-uri", f"runs:/{trained_model['run_id']}/model", "--out", str(model)],
        capture_output=True, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": str(trained_model["tracking_uri"])},
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    commit = head_commit()
    plan = plan_image(model, "", "", commit, f"{container_registry}/test/credit-scoring")
    plan.build_args["MODEL_DIR"] = "build/model"
    built = build_image(plan, container_engine, context, base_image)
    pushed = push_image(plan, container_engine)
    # The tags go (removing the image would drop the layer cache the next build reuses); the
    # container runs what the pull by digest resolved in the registry, the image built.
    container_engine.run("untag", built, *plan.tags)
    assert container_engine.pull(pushed.ref, insecure=True) == built
    return Image(pushed, model, commit, str(trained_model["run_id"]))


@pytest.fixture(scope="module")
def running(
    image: Image,
    container_engine: Engine,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    logs = tmp_path_factory.mktemp("prediction-logs")
    os.chown(logs, UID, UID)  # the service user owns its volume, as a volume's init would
    port = free_port()
    name = f"modelops-test-{port}"
    container_engine.start(
        image.pushed.ref,
        name,
        env={"MODELOPS_PORT": str(port), "MODELOPS_WORKERS": "2"},
        volumes=[f"{logs}:/app/logs"],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout_s=60, what=f"the container {name}")
    except Exception:
        print(container_engine.run("logs", name, check=False).stderr[-3000:])
        container_engine.remove(name)
        raise
    yield Running(name, url, logs)
    container_engine.remove(name)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_digest_is_the_registry_s_and_the_pull_by_digest_is_that_image(
    image: Image,
    container_engine: Engine,  # noqa: F811
    container_registry: str,  # noqa: F811
) -> None:
    for tag in image.pushed.tags:
        repository, reference = tag.removeprefix(f"{container_registry}/").rsplit(":", 1)
        head = httpx.head(
            f"http://{container_registry}/v2/{repository}/manifests/{reference}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == image.pushed.digest
    info = container_engine.inspect(image.pushed.ref)
    assert image.pushed.ref in info["RepoDigests"]


def test_labels_user_and_health_check_are_in_the_image(
    image: Image,
    container_engine: Engine,  # noqa: F811
) -> None:
    config = container_engine.inspect(image.pushed.ref)["Config"]
    exported = json.loads((image.model / "export.json").read_text())
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == image.commit
    assert labels["org.opencontainers.image.version"] == (
        f"{exported['model_name']}-{exported['model_version']}"
    )
    assert labels["io.modelops.model.run-id"] == image.run_id
    assert config["User"] == f"{UID}:{UID}"
    assert container_engine.healthcheck_command(image.pushed.ref) == [
        "CMD", "python", "-m", "serving.healthcheck"
    ]  # fmt: skip


def test_the_container_runs_as_non_root_without_capabilities(
    running: Running,
    container_engine: Engine,  # noqa: F811
) -> None:
    status = container_engine.run("exec", running.name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[:2] == [str(UID), str(UID)]
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    write = container_engine.run("exec", running.name, "touch", "/app/model/x", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_it_serves_the_exported_model_s_predictions(running: Running, image: Image) -> None:
    card = read_card(image.model)
    example = json.loads((image.model / "input_example.json").read_text())
    records = [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
    version = httpx.get(f"{running.url}/version").json()
    assert version["run_id"] == image.run_id and version["predictor"].startswith("onnx")
    expected = load_pipeline(card).predict_proba(Batch.from_records(records, card).frame(card))
    for record, want in zip(records, expected[:, 1], strict=True):
        scored = httpx.post(f"{running.url}/predict", json=record)
        assert scored.status_code == 200, scored.text
        (prediction,) = scored.json()["predictions"]
        assert abs(prediction["score"] - float(want)) < 1e-6


def test_the_health_check_command_probes_the_service(
    running: Running,
    container_engine: Engine,  # noqa: F811
) -> None:
    assert container_engine.healthcheck(running.name).returncode == 0
    wrong_port = container_engine.run(
        "exec", "-e", "MODELOPS_PORT=1", running.name, "python", "-m", "serving.healthcheck",
        check=False,
    )  # fmt: skip
    assert wrong_port.returncode == 1 and "unhealthy" in wrong_port.stderr


def test_sigterm_stops_cleanly_with_every_prediction_logged_on_the_volume_only(
    running: Running,
    image: Image,
    container_engine: Engine,  # noqa: F811
) -> None:
    example = json.loads((image.model / "input_example.json").read_text())
    record = dict(zip(example["columns"], example["data"][0], strict=True))
    responses = [httpx.post(f"{running.url}/predict", json=record) for _ in range(40)]
    assert [r.status_code for r in responses] == [200] * 40
    sent = {r.headers["x-request-id"] for r in responses}
    assert container_engine.stop(running.name, timeout_s=20) == 0  # drained, not killed
    files = [path for path in sorted(running.logs.rglob("*")) if path.is_file()]
    assert files and all(path.parent.name.startswith("date=") for path in files)  # by day
    lines = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    logged = {line["request_id"] for line in lines if line["features"] == record}
    assert sent <= logged, f"{len(sent - logged)} of 40 predictions missing from the log"
    changed = container_engine.run("diff", running.name).stdout.splitlines()
    engine_s = {"/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run"}  # bind mounts
    written = [c for c in changed if c.split(maxsplit=1)[1] not in engine_s]
    assert written == [], written  # nothing outside the volume (and /tmp's tmpfs)
    assert np.isfinite([line["score"] for line in lines]).all()
