"""Registry commands: register the gated model, export a version for the image, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, registry
from modelops.config import load_params
from modelops.errors import Refused

app = typer.Typer()


@app.command()
def register(
    run_file: Annotated[Path, typer.Option(help="run.json from train")] = Path("models/run.json"),
    gate_report: Annotated[Path, typer.Option(help="gate report JSON")] = Path("reports/gate.json"),
    outputs: Annotated[
        Path | None,
        typer.Option(help="append model_name=, version=, created=, model_uri= ($GITHUB_OUTPUT)"),
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Register the gated model as a new version with alias `challenger` (idempotent)."""
    from modelops.pipeline.gate import read_report
    from modelops.pipeline.train import read_run
    from modelops.registry.client import CHALLENGER

    p = load_params(params)
    run = read_run(run_file)

    verdict = read_report(gate_report)
    if verdict.get("challenger_run_id") != run.run_id:
        raise Refused(
            f"{gate_report} judged run {verdict.get('challenger_run_id')}, but "
            f"{run_file} holds run {run.run_id}; rerun `dvc repro` so they match"
        )
    if not verdict.get("passed"):
        raise Refused(
            f"{gate_report}: the gate did not pass ({'; '.join(verdict['reasons'])}); "
            "refusing to register"
        )
    store = registry()
    if not store.run_exists(run.run_id):
        raise Refused(
            f"MLflow run {run.run_id} is not in {store.tracking_uri} "
            "(outputs restored from the DVC cache of another store?); run "
            "`dvc repro --force train` to log a fresh run here"
        )
    tags = {
        "run_id": run.run_id,
        "git_commit": run.git_commit,
        "data_md5": run.data_md5,
        "gate": "passed",
        "gate_auc": f"{verdict['challenger_auc']:.4f}",
    }
    ref, created = store.register(
        p.register_.model_name, run.model_uri, run.run_id, tags, [CHALLENGER]
    )
    state = "registered" if created else "already registered (nothing new)"
    typer.echo(f"{ref.name} version {ref.version} {state}; alias '{CHALLENGER}' -> {ref.version}")
    if outputs is not None:
        outputs.parent.mkdir(parents=True, exist_ok=True)
        with outputs.open("a") as handle:
            handle.write(
                f"model_name={ref.name}\nversion={ref.version}\n"
                f"created={str(created).lower()}\nmodel_uri={ref.uri}\n"
            )


@app.command("export-model")
def export_model(
    model_uri: Annotated[
        str,
        typer.Option(
            help="models:/<name>@<alias>, models:/<name>/<version>, runs:/..., a folder, "
            "or a bare alias (champion) / version number of register.model_name"
        ),
    ],
    out: Annotated[Path, typer.Option(help="folder to write (what the image's MODEL_DIR takes)")],
    force: Annotated[bool, typer.Option(help="replace a non-empty --out")] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Copy a model version into a plain folder (+ export.json) for the service image."""
    from modelops.registry.export import expand_model_uri
    from modelops.registry.export import export_model as export
    from modelops.registry.model_source import is_registry_uri

    uri = expand_model_uri(model_uri, params)
    from modelops.deploy.image import serve_extras
    from serving.compiled import compile_export

    info = export(uri, out, registry() if is_registry_uri(uri) else None, force=force)
    note = compile_export(out)  # the fast path, cross-checked against sklearn, for the image
    typer.echo(
        f"exported {info.model_name} version {info.model_version} (run {info.run_id}, "
        f"commit {info.git_commit}) -> {out}\npredictor: {note}\n"
        f"docker build {info.build_args(out)} --build-arg GIT_COMMIT={info.git_commit} "
        f"--build-arg SERVE_EXTRAS={serve_extras(out)} ."
    )


@app.command()
def history(
    model_name: Annotated[
        str | None, typer.Option(help="registered model (default: params register.model_name)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Timeline of every version: registered (run, commit, gate AUC), aliases, deploy events."""
    from modelops.registry.history import timeline

    name = model_name or load_params(params).register_.model_name
    rows = timeline(registry(), name)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"{name}: no versions registered yet (`make run` registers the first)")
        return
    for row in rows:
        aliases = f" [{', '.join(row['aliases'])}]" if row["aliases"] else ""
        events = "; ".join(f"{e['event']} {e['at']}" for e in row["events"])
        typer.echo(
            f"v{row['version']}{aliases}  registered {row['registered_at']}  "
            f"gate AUC {row['gate_auc'] or '?'}  commit {row['git_commit'][:12]}"
            + (f"  | {events}" if events else "")
        )
