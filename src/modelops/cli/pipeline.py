"""Pipeline commands: the DVC stages (validate-data, assemble, split, train, evaluate, gate),
then where and the PR comment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, registry
from modelops.config import load_params
from modelops.errors import Refused

app = typer.Typer()


@app.command("validate-data")
def validate_data(
    data: Annotated[Path, typer.Option(help="raw CSV to check")],
    report: Annotated[Path, typer.Option(help="JSON report to write")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Check schema, labels, missing values, ranges, duplicates, size and class balance."""
    from modelops.pipeline.data import read_raw
    from modelops.pipeline.data_validation import validate_frame

    p = load_params(params)
    frame = read_raw(data)
    result = validate_frame(frame, p.data, p.data_validation)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.passed:
        raise Refused(
            f"{data}: data validation failed ({len(result.failures)} problem(s)):\n  "
            + "\n  ".join(c.message for c in result.failures)
            + f"\nFull report: {report}"
        )
    typer.echo(f"{data}: {result.rows} rows passed {len(result.checks)} checks -> {report}")


@app.command()
def assemble(
    base: Annotated[Path, typer.Option(help="the committed base table (data.path)")],
    source: Annotated[
        str, typer.Option(help="where labeled batches land: a folder, s3://... or gs://...")
    ],
    out_dir: Annotated[Path, typer.Option(help="folder for table.parquet and lineage.json")],
    report: Annotated[Path, typer.Option(help="JSON report: every batch's fate and problems")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Training table = base + the valid source batches in source.window; bad ones quarantined."""
    from modelops.pipeline.batches import assemble as assemble_table
    from modelops.pipeline.batches import write_assembled

    p = load_params(params)
    result = assemble_table(base, source, p.source.window, p.data, p.data_validation)
    write_assembled(result, source, p.source.window, out_dir, report)
    for batch in result.quarantined:
        typer.secho(
            f"QUARANTINED {source.rstrip('/')}/{batch.name} (not trained on):\n  "
            + "\n  ".join(str(problem["message"]) for problem in batch.problems),
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(
        f"assembled {len(result.table)} rows: base {result.base['rows']} + "
        f"{len(result.included)} batch(es) of {len(result.batches)} in {source} "
        f"({len(result.quarantined)} quarantined) -> {out_dir}; report {report}"
    )


@app.command()
def split(
    data: Annotated[Path, typer.Option(help="the training table (assemble's table.parquet)")],
    out_dir: Annotated[Path, typer.Option(help="folder for train.parquet and test.parquet")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Seeded hash split into train and test (a row keeps its side as the data grows)."""
    from modelops.pipeline.data import read_table, write_split
    from modelops.pipeline.data import split as split_frame

    p = load_params(params)
    train, test = split_frame(read_table(data), p.data, p.split)
    write_split(train, test, out_dir)
    typer.echo(f"split {len(train) + len(test)} rows -> train {len(train)}, test {len(test)}")


@app.command()
def train(
    train_data: Annotated[Path, typer.Option("--train", help="train.parquet from split")],
    data: Annotated[Path, typer.Option(help="the training table (its hash is logged)")],
    model_dir: Annotated[Path, typer.Option(help="where to save the MLflow model folder")],
    run_file: Annotated[Path, typer.Option(help="JSON with the MLflow run id, for later stages")],
    lineage: Annotated[
        Path | None, typer.Option(help="assemble's lineage.json: the batches trained on")
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Fit the pipeline chosen in params and log an MLflow run with the model."""
    from modelops.pipeline.train import train_and_log
    from modelops.registry.tracking import TrackingSettings

    p = load_params(params)
    result = train_and_log(
        p, train_data, data, model_dir, run_file, TrackingSettings(), lineage=lineage
    )
    typer.echo(
        f"trained {p.train.model} on {result.train_rows} rows in {result.fit_seconds}s; "
        f"MLflow run {result.run_id}"
    )


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option(help="MLflow model folder from train")],
    test: Annotated[Path, typer.Option(help="test.parquet from split")],
    run_file: Annotated[Path, typer.Option(help="run.json from train")],
    metrics: Annotated[Path, typer.Option(help="metrics JSON to write")],
    plots_dir: Annotated[Path, typer.Option(help="folder for curve tables and PNGs")],
    predictions: Annotated[Path, typer.Option(help="test-set scores (parquet) for the gate")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Test-set metrics with AUC interval and per-segment AUC; ROC/PR/calibration plots."""
    from modelops.pipeline.evaluate import run_evaluate
    from modelops.pipeline.train import read_run

    p = load_params(params)
    result = run_evaluate(p, model_dir, test, metrics, plots_dir, predictions)
    scalars = {f"test_{k}": v for k, v in result.items() if isinstance(v, float)}
    store, run_id = registry(), read_run(run_file).run_id
    if store.run_exists(run_id):
        store.log_to_run(run_id, scalars, [metrics, *sorted(plots_dir.glob("*.png"))])
    else:
        typer.secho(
            f"warning: run {run_id} is not in {store.tracking_uri}; metrics kept in files only",
            err=True,
        )
    typer.echo(
        f"test ROC AUC {result['roc_auc']:.4f} "
        f"[{result['roc_auc_ci_low']:.4f}, {result['roc_auc_ci_high']:.4f}], "
        f"PR AUC {result['pr_auc']:.4f} -> {metrics}"
    )


@app.command()
def gate(
    predictions: Annotated[Path, typer.Option(help="test-set scores from evaluate")],
    test: Annotated[Path, typer.Option(help="test.parquet (the champion is scored on it)")],
    run_file: Annotated[Path, typer.Option(help="run.json from train")],
    report: Annotated[Path, typer.Option(help="gate report JSON to write")],
    summary: Annotated[Path, typer.Option(help="gate report markdown to write")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Pass or fail the challenger: AUC floor and no significant drop against the champion."""
    import pandas as pd

    from modelops.pipeline.data import coerce_features, read_split
    from modelops.pipeline.gate import champion_scores, decide, write_report
    from modelops.pipeline.train import read_run

    p = load_params(params)
    scored = pd.read_parquet(predictions)
    features = coerce_features(read_split(test), p.data)
    champion, version, note = champion_scores(
        registry(), p.register_.model_name, features, p.data.features
    )
    run_id = read_run(run_file).run_id
    result = decide(
        scored["label"].to_numpy(),
        scored["score"].to_numpy(),
        champion,
        version,
        run_id,
        p.gate,
        note,
    )
    write_report(result, report, summary)
    typer.echo(result.to_markdown())
    if not result.passed:
        raise Refused(
            f"gate failed: {'; '.join(result.reasons)}. Nothing was registered; "
            f"improve the model or data and rerun `dvc repro`. Report: {report}"
        )


@app.command()
def where(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Print the headline results of the last pipeline run and where to look for more."""
    from modelops.registry.tracking import TrackingSettings

    uri = TrackingSettings().tracking_uri
    lines = []
    metrics, gate_file = Path("reports/metrics.json"), Path("reports/gate.json")
    if metrics.is_file() and gate_file.is_file():
        m, g = json.loads(metrics.read_text()), json.loads(gate_file.read_text())
        verdict = "passed" if g.get("passed") else "FAILED"
        lines.append(
            f"Test ROC AUC {m['roc_auc']:.4f} [{m['roc_auc_ci_low']:.4f}, "
            f"{m['roc_auc_ci_high']:.4f}], PR AUC {m['pr_auc']:.4f}; gate {verdict}"
        )
    lines += [
        f"MLflow UI:  mlflow ui --backend-store-uri {uri}  (http://127.0.0.1:5000)",
        "Metrics:    reports/metrics.json   (dvc metrics show)",
        "Gate:       reports/gate.md",
        "Plots:      reports/plots/{roc,precision_recall,calibration}.png (dvc plots show)",
        "Model:      models/model (MLflow model folder), run id in models/run.json",
    ]
    typer.echo("\n".join(lines))


@app.command("pr-comment")
def pr_comment(
    base_ref: Annotated[
        str, typer.Option(help="git revision to compare with: the PR's base commit or branch")
    ] = "main",
    out: Annotated[Path, typer.Option(help="markdown file to write (the comment body)")] = Path(
        "build/pr-comment.md"
    ),
    base_label: Annotated[
        str | None, typer.Option(help="name shown for the base (default: --base-ref)")
    ] = None,
    run_url: Annotated[
        str | None, typer.Option(help="link to the CI run (default: from GITHUB_* variables)")
    ] = None,
) -> None:
    """Pull-request report: metrics and params diff against the base, gate verdict, curves."""
    from modelops.ci.github import run_url_from_env
    from modelops.ci.pr_comment import collect, write

    report = collect(
        Path.cwd(), base_ref, base_label=base_label, run_url=run_url or run_url_from_env()
    )
    write(report, out)
    typer.echo(f"{report.verdict.headline} (vs {report.base_label}) -> {out}")
