"""The image, natively. No Docker engine runs here (the one stand-in of this test), so it
rebuilds what the Dockerfile builds and runs what it runs, read from the Dockerfile itself:

  - the build stage: its COPY sources make the build context, its RUN lines' recipe (the
    `serve` extra, requirements.lock as constraints, wheels only, the project with --no-deps)
    makes a fresh virtualenv;
  - the runtime stage: the model exported by `modelops export-model` goes where
    COPY ${MODEL_DIR} puts it, the ENV lines become the environment, CMD is the command and
    HEALTHCHECK the probe, with the image's /app and /opt/venv mapped to temp folders.

If the Dockerfile's start command, environment or health check change, this test runs the
changed ones."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.process import ServiceProcess, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def runtime_stage(text: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(build stage, runtime stage) instructions."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages[0], stages[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form, not {args!r}"
    return [str(v) for v in value]


def image_env(runtime: list[tuple[str, str]], mapping: dict[str, str]) -> dict[str, str]:
    """The ENV lines, with ARG defaults substituted and image paths mapped to local ones."""
    args = {}
    for word, rest in runtime:
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value.strip('"')
    env: dict[str, str] = {}
    for word, rest in runtime:
        if word != "ENV":
            continue
        for pair in shlex.split(rest):
            key, value = pair.split("=", 1)
            value = re.sub(
                r"\$\{?(\w+)\}?",
                lambda m: args.get(m[1], env.get(m[1], os.environ.get(m[1], ""))),
                value,
            )
            for image_path, local in mapping.items():
                value = value.replace(image_path, local)
            env[key] = value
    return env


def build_venv(build: list[tuple[str, str]], context: Path, venv: Path) -> Path:
    """The build stage's recipe, with uv when present (same resolver inputs, faster)."""
    runs = " ".join(rest for word, rest in build if word == "RUN")
    assert "--only-binary=:all: -c requirements.lock -r serve-requirements.txt" in runs
    extract = re.search(r'python -c "(.+?)" > serve-requirements\.txt', runs)
    assert extract is not None
    subprocess.run([sys.executable, "-c", extract[1]], cwd=context, check=True,
                   stdout=(context / "serve-requirements.txt").open("w"))  # fmt: skip
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", str(venv), "--python", "3.11"], check=True)
        install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
        binary = ["--only-binary", ":all:"]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = [str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir"]
        binary = ["--only-binary=:all:"]
    subprocess.run([*install, *binary, "-c", "requirements.lock", "-r", "serve-requirements.txt"],
                   cwd=context, check=True)  # fmt: skip
    subprocess.run([*install, "--no-deps", "."], cwd=context, check=True)
    return venv


def test_the_image_start_command_serves_the_exported_model(
    trained_model: dict[str, Any], tmp_path: Path
) -> None:
    text = (ROOT / "Dockerfile").read_text()
    build, runtime = runtime_stage(text)

    # the build context: exactly what the build stage copies
    context = tmp_path / "context"
    context.mkdir()
    for word, rest in build:
        if word == "COPY":
            *sources, _ = shlex.split(rest)
            for source in sources:
                target = context / source
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(ROOT / source, target)
    venv = build_venv(build, context, tmp_path / "opt-venv")
    no_mlflow = subprocess.run([str(venv / "bin" / "python"), "-c", "import mlflow"],
                               capture_output=True)  # fmt: skip
    assert no_mlflow.returncode != 0  # the image serves without the pipeline's packages
    uri = "models:/credit-scoring@champion"
    registry = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "serving", "--model", uri],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert registry.returncode == 1
    assert "needs mlflow" in registry.stderr and "modelops export-model" in registry.stderr

    # the model: exported from the tracking store, copied where COPY ${MODEL_DIR} puts it
    app = tmp_path / "app"
    exported = tmp_path / "build" / "model"
    export = subprocess.run(
        [str(Path(sys.executable).parent / "modelops"), "export-model",
         "--model-uri", f"runs:/{trained_model['run_id']}/model", "--out", str(exported)],
        capture_output=True, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": str(trained_model["tracking_uri"])},
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    copies = [rest for word, rest in runtime if word == "COPY" and "--from" not in rest]
    assert copies == ["${MODEL_DIR} /app/model"]
    shutil.copytree(exported, app / "model")
    for word, rest in runtime:
        if word == "RUN" and "mkdir /app/logs" in rest:
            (app / "logs").mkdir()

    mapping = {"/opt/venv": str(venv), "/app": str(app)}
    env = image_env(runtime, mapping)
    assert env["MODELOPS_MODEL_URI"] == str(app / "model")
    port = free_port()
    env["MODELOPS_PORT"] = str(port)  # the image listens on 8000; any free port here
    (workdir,) = [rest for word, rest in runtime if word == "WORKDIR"]
    (cmd,) = [exec_form(rest) for word, rest in runtime if word == "CMD"]
    assert not [rest for word, rest in runtime if word == "ENTRYPOINT"]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "MLFLOW_"))}
    service = ServiceProcess(
        cmd, port=port, env={**clean_env, **env}, cwd=Path(mapping["/app"] + workdir[4:]),
        log=tmp_path / "service.log",
    )  # fmt: skip
    with service:
        assert httpx.get(f"{service.url}/health").json() == {"status": "ok"}
        version = httpx.get(f"{service.url}/version").json()
        assert version["run_id"] == trained_model["run_id"]
        assert version["predictor"].startswith("onnx")
        example = json.loads((app / "model" / "input_example.json").read_text())
        record = dict(zip(example["columns"], example["data"][0], strict=True))
        scored = httpx.post(f"{service.url}/predict", json=record)
        assert scored.status_code == 200, scored.text
        (health,) = [rest for word, rest in runtime if word == "HEALTHCHECK"]
        probe = exec_form(health.split("CMD", 1)[1].strip())
        checked = subprocess.run(probe, env={**clean_env, **env}, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        assert service.process is not None
        pid = service.process.pid
        assert Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1] == cmd
        assert str(venv / "lib") in Path(f"/proc/{pid}/maps").read_text()  # the image's venv
    (day,) = (app / "logs" / "predictions").glob("date=*/predictions-*.jsonl")
    log = day.read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["features"] == record
    down = subprocess.run(probe, env={**clean_env, **env}, capture_output=True, text=True)
    assert down.returncode == 1  # the probe really probes
