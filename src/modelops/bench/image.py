"""Image benchmark: size and start-to-ready time of the real service image.

    python -m modelops.bench.image --model-dir build/model --base local \
        --baseline-ref main --out bench/results/image.json

Builds this tree's Dockerfile with the exported model (and, side by side, the Dockerfile and
sources of `--baseline-ref` with the same model and base), pushes each to a registry started
for the run, removes the local tags, pulls by the digest the registry returned, and runs the
pulled image the hardened way (read-only root, no capabilities) `--starts` times, timing
`run` to the first 200 from /ready. Sizes are uncompressed, as the engine stores them:
`app_layers_mb` is what the Dockerfile adds above the base.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from modelops.deploy.base_image import resolve_base
from modelops.deploy.engine import Engine, detect
from modelops.deploy.image import build_image, is_local_registry, plan_image, push_image
from modelops.deploy.local import registry as local_registry
from modelops.deploy.local.procs import free_port

GOALS = {"app_layers_mb": 250, "seconds_to_ready": 2.0}
MB = 1e6


def seconds_to_ready(engine: Engine, ref: str, timeout_s: float = 60) -> float:
    """`run` of the image to the first 200 from /ready (the container is removed after)."""
    port = free_port()
    name = f"bench-image-{port}"
    started = time.perf_counter()
    engine.start(ref, name, env={"MODELOPS_PORT": str(port)}, tmpfs=["/app/logs:mode=1777"])
    try:
        while time.perf_counter() - started < timeout_s:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    return round(time.perf_counter() - started, 3)
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        logs = engine.run("logs", name, check=False).stdout[-2000:]
        raise RuntimeError(f"{ref} not ready after {timeout_s}s:\n{logs}")
    finally:
        engine.remove(name)


def measure(
    engine: Engine, context: Path, model_dir: str, base: str, image_name: str, starts: int
) -> dict[str, Any]:
    """Build, push, pull by digest and start the image of `context`."""
    commit = "0" * 40
    plan = plan_image(context / model_dir, "", "", commit, image_name)
    plan.build_args["MODEL_DIR"] = model_dir
    started = time.perf_counter()
    build_image(plan, engine, context, base)
    build_seconds = round(time.perf_counter() - started, 1)
    pushed = push_image(plan, engine)
    engine.run("rmi", *plan.tags)
    engine.pull(pushed.ref, insecure=is_local_registry(plan.registry))
    image = engine.inspect(pushed.ref)
    base_bytes = engine.inspect(base)["Size"] if base else 0
    times = [seconds_to_ready(engine, pushed.ref) for _ in range(starts)]
    engine.run("rmi", "-f", pushed.ref, check=False)
    return {
        "image_mb": round(image["Size"] / MB, 1),
        "base_mb": round(base_bytes / MB, 1),
        "app_layers_mb": round((image["Size"] - base_bytes) / MB, 1),
        "seconds_to_ready": statistics.median(times),
        "seconds_to_ready_runs": times,
        "build_seconds": build_seconds,
        "digest": pushed.digest,
    }


def baseline_context(ref: str, model_dir: Path, destination: Path) -> Path:
    """The repository's files at git `ref`, with the exported model copied in."""
    archive = subprocess.run(["git", "archive", ref], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    shutil.copytree(model_dir, destination / "build" / "model")
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("build/model"))
    parser.add_argument("--base", default="auto", help="PYTHON_IMAGE, `local` or `auto`")
    parser.add_argument("--baseline-ref", default="", help="git ref to compare with")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/image.json"))
    args = parser.parse_args()
    if not (args.model_dir / "export.json").is_file():
        raise SystemExit(f"{args.model_dir}: no exported model; run `make export-model` first")
    engine = detect()
    base = resolve_base(args.base, engine)
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        port = free_port()
        host = local_registry.start(Path(tmp) / "registry", port)
        try:
            model = args.model_dir.as_posix()
            print(f"building this tree's image with {model} on {base or 'the default base'}")
            result = measure(engine, Path("."), model, base, f"{host}/bench/current", args.starts)
            print(json.dumps(result))
            if args.baseline_ref:
                print(f"building {args.baseline_ref}'s image, same model and base")
                context = baseline_context(args.baseline_ref, args.model_dir, Path(tmp) / "base")
                before = measure(
                    engine, context, "build/model", base, f"{host}/bench/baseline", args.starts
                )
                result["baseline"] = {"ref": args.baseline_ref, **before}
                result["ratios"] = {
                    key: round(result[key] / before[key], 3)
                    for key in ("image_mb", "app_layers_mb", "seconds_to_ready")
                    if before[key]
                }
        finally:
            local_registry.stop(Path(tmp) / "registry", port)
    result.update(
        goals=GOALS,
        engine=engine.name,
        base=base,
        machine={"cpus": os.cpu_count(), "arch": platform.machine()},
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
