"""Registry commands: register the gated model (with its model card), export a version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, registry
from modelops.config import Params, load_params
from modelops.errors import Refused
from modelops.registry.card import CardInputs
from modelops.registry.client import VersionRef

app = typer.Typer()
LOCK = Path("dvc.lock")


def register_gated(
    p: Params, run_file: Path, gate_report: Path, card_inputs: CardInputs | None = None
) -> tuple[VersionRef, bool]:
    """Register the run in run_file if gate_report passed it, with its model card (model-card.md
    on the training run; tag `model_card` on the version): (version, created now)."""
    from modelops.pipeline.gate import read_report
    from modelops.pipeline.train import read_run
    from modelops.registry.card import CARD_TAG, collect_card, log_card
    from modelops.registry.client import CHALLENGER

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
    inputs = card_inputs or CardInputs(
        Path("reports/metrics.json"), gate_report, Path("reports/data_validation.json"), LOCK
    )
    card = collect_card(p, run, inputs)
    tags = {
        "run_id": run.run_id,
        "git_commit": run.git_commit,
        "data_md5": run.data_md5,
        "data_batches": str(run.data_batches),
        "gate": "passed",
        "gate_auc": f"{verdict['challenger_auc']:.4f}",
    }
    ref, created = store.register(
        p.register_.model_name, run.model_uri, run.run_id, tags, [CHALLENGER]
    )
    if CARD_TAG not in ref.tags:  # a rerun after a failed card write finishes the job
        typer.echo(f"model card: {log_card(store, ref, card)}")
    for missing in card.missing:
        typer.secho(f"warning: model card: missing {missing}", err=True, fg=typer.colors.YELLOW)
    return ref, created


def write_outputs(outputs: Path, ref: VersionRef, created: bool) -> None:
    """Append model_name=, version=, created=, model_uri= lines ($GITHUB_OUTPUT format)."""
    outputs.parent.mkdir(parents=True, exist_ok=True)
    with outputs.open("a") as handle:
        handle.write(
            f"model_name={ref.name}\nversion={ref.version}\n"
            f"created={str(created).lower()}\nmodel_uri={ref.uri}\n"
        )


@app.command()
def register(
    run_file: Annotated[Path, typer.Option(help="run.json from train")] = Path("models/run.json"),
    gate_report: Annotated[Path, typer.Option(help="gate report JSON")] = Path("reports/gate.json"),
    outputs: Annotated[
        Path | None,
        typer.Option(help="append model_name=, version=, created=, model_uri= ($GITHUB_OUTPUT)"),
    ] = None,
    metrics: Annotated[
        Path, typer.Option(help="evaluate stage's metrics (for the model card)")
    ] = Path("reports/metrics.json"),
    data_report: Annotated[
        Path, typer.Option(help="validate_data report (rows, for the model card)")
    ] = Path("reports/data_validation.json"),
    lock: Annotated[Path, typer.Option(help="dvc.lock (data hash, for the model card)")] = LOCK,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Register the gated model as a new version with alias `challenger` (idempotent), and log
    its model card."""
    from modelops.registry.client import CHALLENGER

    inputs = CardInputs(metrics, gate_report, data_report, lock)
    ref, created = register_gated(load_params(params), run_file, gate_report, inputs)
    state = "registered" if created else "already registered (nothing new)"
    typer.echo(f"{ref.name} version {ref.version} {state}; alias '{CHALLENGER}' -> {ref.version}")
    if outputs is not None:
        write_outputs(outputs, ref, created)


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
    """Copy a model version into a plain folder (+ export.json, and log_redact.json: the
    prediction-log policy serve.log_redact) for the service image."""
    from modelops.deploy.image import serve_extras
    from modelops.registry.export import expand_model_uri
    from modelops.registry.export import export_model as export
    from modelops.registry.log_policy import from_params
    from modelops.registry.model_source import is_registry_uri
    from serving.compiled import compile_export

    uri = expand_model_uri(model_uri, params)
    redaction = from_params(params)
    store = registry() if is_registry_uri(uri) else None
    info = export(uri, out, store, force=force, redaction=redaction)
    note = compile_export(out)  # the fast path, cross-checked against sklearn, for the image
    redacted = f"; log redaction: drop {redaction.drop}, hash {redaction.hash}" * bool(
        redaction.columns
    )
    typer.echo(
        f"exported {info.model_name} version {info.model_version} (run {info.run_id}, "
        f"commit {info.git_commit}) -> {out}{redacted}\npredictor: {note}\n"
        f"docker build {info.build_args(out)} --build-arg GIT_COMMIT={info.git_commit} "
        f"--build-arg SERVE_EXTRAS={serve_extras(out)} ."
    )
