"""The `modelops` command: every DVC stage and workflow step is one of these commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelops.config import Params, load_params
from modelops.errors import ModelopsError, Refused

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="DVC stages, MLflow registry and deploy commands for this template.",
)

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
DEFAULT_PARAMS = Path("params.yaml")


def _params(path: Path) -> Params:
    return load_params(path)


@app.callback()
def _main() -> None:
    """Quiet MLflow's progress bars; they drown the stage output in logs."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@app.command("validate-data")
def validate_data(
    data: Annotated[Path, typer.Option(help="raw CSV to check")],
    report: Annotated[Path, typer.Option(help="JSON report to write")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Check schema, labels, missing values, ranges, duplicates, size and class balance."""
    from modelops.data import read_raw
    from modelops.validation import validate_frame

    p = _params(params)
    frame = read_raw(data)
    result = validate_frame(frame, p.data, p.validate_)
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
def split(
    data: Annotated[Path, typer.Option(help="validated raw CSV")],
    out_dir: Annotated[Path, typer.Option(help="folder for train.parquet and test.parquet")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stratified, seeded train/test split."""
    from modelops.data import read_raw, write_split
    from modelops.data import split as split_frame

    p = _params(params)
    train, test = split_frame(read_raw(data), p.data, p.split)
    write_split(train, test, out_dir)
    typer.echo(f"split {len(train) + len(test)} rows -> train {len(train)}, test {len(test)}")


@app.command()
def train(
    train_data: Annotated[Path, typer.Option("--train", help="train.parquet from split")],
    data: Annotated[Path, typer.Option(help="raw data file (its hash is logged)")],
    model_dir: Annotated[Path, typer.Option(help="where to save the MLflow model folder")],
    run_file: Annotated[Path, typer.Option(help="JSON with the MLflow run id, for later stages")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Fit the pipeline chosen in params and log an MLflow run with the model."""
    from modelops.tracking import TrackingSettings
    from modelops.train import train_and_log

    p = _params(params)
    result = train_and_log(p, train_data, data, model_dir, run_file, TrackingSettings())
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
    from modelops.evaluate import run_evaluate
    from modelops.tracking import TrackingSettings, log_to_run
    from modelops.train import read_run

    p = _params(params)
    result = run_evaluate(p, model_dir, test, metrics, plots_dir, predictions)
    scalars = {f"test_{k}": v for k, v in result.items() if isinstance(v, float)}
    log_to_run(
        TrackingSettings(),
        read_run(run_file).run_id,
        scalars,
        [metrics, *sorted(plots_dir.glob("*.png"))],
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

    from modelops.data import coerce_features, read_split
    from modelops.gate import champion_scores, decide, write_report
    from modelops.tracking import TrackingSettings, connect
    from modelops.train import read_run

    p = _params(params)
    scored = pd.read_parquet(predictions)
    connect(TrackingSettings())
    features = coerce_features(read_split(test), p.data)
    champion, version, note = champion_scores(p.register_.model_name, features, p.data.features)
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
    from modelops.gate import read_report
    from modelops.registry import CHALLENGER, register_version
    from modelops.tracking import TrackingSettings, connect, run_exists
    from modelops.train import read_run

    p = _params(params)
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
    connect(TrackingSettings())
    if not run_exists(run.run_id):
        raise Refused(
            f"MLflow run {run.run_id} is not in {TrackingSettings().tracking_uri} "
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
    ref, created = register_version(
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


@app.command()
def where(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Print the headline results of the last pipeline run and where to look for more."""
    from modelops.tracking import TrackingSettings

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


@app.command()
def drift(
    data: Annotated[
        Path, typer.Option(help="prediction log (JSON lines), CSV/parquet table, or a folder")
    ],
    reference: Annotated[
        str, typer.Option(help="model folder, models:/<name>@<alias>, or a reference.json")
    ] = "models/model",
    out_dir: Annotated[
        Path, typer.Option(help="folder for drift.json (verdict), drift.md, drift.html, PNGs")
    ] = Path("reports/drift"),
    reference_data: Annotated[
        Path | None, typer.Option(help="training rows (CSV/parquet): exact KS, real counts")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="only the log lines of this model version")
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="lowest verdict that exits 3: drift | warning")
    ] = "drift",
    outputs: Annotated[
        Path | None,
        typer.Option(help="append verdict=, retrain=, exit_code= ($GITHUB_OUTPUT)"),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option(help="exit 0 whatever the verdict (read it from --outputs)")
    ] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Data drift against the training reference: PSI, KS, chi-squared, score distribution.

    Exit codes: 0 no drift, 3 drift (or warning with --fail-on warning), 4 inconclusive
    (fewer rows than drift.min_rows), 1 bad input, 2 bad command line. --reference also
    takes a bare alias (champion) or version of register.model_name.
    """
    from modelops.drift_report import JSON_FILE, exit_code, headline, run_drift
    from modelops.export import expand_model_uri
    from modelops.monitor import write_outputs

    if fail_on not in ("drift", "warning"):
        raise typer.BadParameter("use drift or warning", param_hint="--fail-on")
    p = _params(params)
    reference = expand_model_uri(reference, params)
    report = run_drift(data, reference, p, out_dir, reference_data, model_version)
    typer.echo(f"drift verdict: {headline(report)} -> {out_dir / JSON_FILE}")
    code = exit_code(report, fail_on)
    if outputs is not None:
        write_outputs(outputs, report.verdict, code)
    raise typer.Exit(0 if exit_zero else code)


@app.command("drift-issue")
def drift_issue(
    report_dir: Annotated[Path, typer.Option(help="the --out-dir of `modelops drift`")] = Path(
        "reports/drift"
    ),
    out: Annotated[Path, typer.Option(help="markdown file to write (the issue body)")] = Path(
        "build/drift-issue.md"
    ),
    environment: Annotated[str, typer.Option(help="where the logs come from")] = "production",
    logs: Annotated[str, typer.Option(help="the logs' location, quoted in the issue")] = "",
    outputs: Annotated[
        Path | None, typer.Option(help="append issue_title=, issue_body= ($GITHUB_OUTPUT)")
    ] = None,
) -> None:
    """The body of the issue the monitor workflow opens on drift (from a drift report)."""
    from modelops.monitor import write_issue
    from modelops.report import run_url_from_env

    title = write_issue(report_dir, out, environment, logs or "?", run_url_from_env(), outputs)
    typer.echo(f"{title} -> {out}")


@app.command()
def validate(
    model: Annotated[
        str, typer.Option(help="models:/<name>@<alias> (or /<version>) or a model folder")
    ],
    data: Annotated[Path, typer.Option(help="fresh labeled rows (CSV/parquet) with the target")],
    report: Annotated[Path, typer.Option(help="JSON report to write")] = Path(
        "reports/validate.json"
    ),
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Concept drift: AUC on fresh labeled data; exit 3 when it is under gate.min_auc."""
    from modelops.concept import validate_model, write_validation

    p = _params(params)
    result = validate_model(model, data, p)
    write_validation(result, report)
    typer.echo(result.summary())
    if not result.passed:
        raise typer.Exit(3)


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
    from modelops.export import expand_model_uri
    from modelops.export import export_model as export

    info = export(expand_model_uri(model_uri, params), out, force=force)
    typer.echo(
        f"exported {info.model_name} version {info.model_version} (run {info.run_id}, "
        f"commit {info.git_commit}) -> {out}\n"
        f"docker build {info.build_args(out)} --build-arg GIT_COMMIT={info.git_commit} ."
    )


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
    from modelops.report import collect, run_url_from_env, write

    report = collect(
        Path.cwd(), base_ref, base_label=base_label, run_url=run_url or run_url_from_env()
    )
    write(report, out)
    typer.echo(f"{report.verdict.headline} (vs {report.base_label}) -> {out}")


@app.command("image-plan")
def image_plan(
    model_dir: Annotated[Path, typer.Option(help="folder written by export-model")] = Path(
        "build/model"
    ),
    registry: Annotated[str, typer.Option(help="container registry host")] = "ghcr.io",
    repository: Annotated[
        str, typer.Option(help="owner/name ($GITHUB_REPOSITORY)", envvar="GITHUB_REPOSITORY")
    ] = "",
    commit: Annotated[
        str, typer.Option(help="git commit of the code built ($GITHUB_SHA)", envvar="GITHUB_SHA")
    ] = "",
    image_name: Annotated[
        str,
        typer.Option(
            help="image name instead of <registry>/<repository> (host/path, no tag)",
            envvar="IMAGE_NAME",
        ),
    ] = "",
    outputs: Annotated[
        Path | None,
        typer.Option(help="append registry=, image=, tags, build-args ($GITHUB_OUTPUT)"),
    ] = None,
) -> None:
    """Image name, tags (model version, git commit) and build arguments for an exported model."""
    from modelops.deploy.image import plan_image

    plan = plan_image(model_dir, registry, repository, commit, image_name)
    if outputs is not None:
        outputs.parent.mkdir(parents=True, exist_ok=True)
        with outputs.open("a", encoding="utf-8") as handle:
            handle.write(plan.to_outputs())
    typer.echo("\n".join(plan.tags))


@app.command("gitops-commit")
def gitops_commit(
    env_dir: Annotated[Path, typer.Option(help="infra/terraform/envs/<env>")],
    reason: Annotated[str, typer.Option(help="why the state changed (commit subject)")],
    push: Annotated[bool, typer.Option(help="push the commit to --remote/--branch")] = False,
    remote: Annotated[str, typer.Option(help="git remote to push to")] = "origin",
    branch: Annotated[str, typer.Option(help="branch that holds the desired state")] = "main",
) -> None:
    """Commit the environment's desired-state file if it changed (and push it)."""
    from modelops.deploy.publish import publish_state
    from modelops.report import run_url_from_env

    done = publish_state(
        env_dir, reason, push=push, remote=remote, branch=branch, run_url=run_url_from_env()
    )
    if done.commit is None:
        typer.echo(f"{env_dir}: desired state unchanged, nothing to commit")
    else:
        where = f"pushed to {remote} {branch}" if done.pushed else "committed locally"
        typer.echo(f"{env_dir}: desired state {where} ({done.commit[:12]})")


@app.command("tag-image")
def tag_image(
    version: Annotated[str, typer.Option(help="model version the image serves")],
    image: Annotated[str, typer.Option(help="the image, pinned by digest: host/repo@sha256:...")],
    model_name: Annotated[
        str | None, typer.Option(help="registered model (default: params register.model_name)")
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Record which image serves a model version (tag `image`; the canary sets it itself)."""
    from modelops.deploy.gitops import IMAGE_PATTERN
    from modelops.deploy.promoter import RegistryPromoter
    from modelops.tracking import TrackingSettings

    name = model_name or _params(params).register_.model_name
    if not IMAGE_PATTERN.fullmatch(image):
        raise Refused(
            f"image {image!r} is not pinned by digest: use a reference like "
            "ghcr.io/owner/repo@sha256:<64 hex> (the digest `docker push` printed)"
        )
    _use_registry(TrackingSettings().tracking_uri)
    RegistryPromoter().record_image(name, version, image)
    typer.echo(f"models:/{name}/{version}: image = {image}")


@app.command()
def rollback(
    env_dir: Annotated[
        Path,
        typer.Option(help="terraform environment to roll back, e.g. infra/terraform/envs/staging"),
    ],
    model_name: Annotated[
        str | None, typer.Option(help="registered model (default: params register.model_name)")
    ] = None,
    reason: Annotated[str, typer.Option(help="why; tagged on the version rolled back")] = (
        "manual rollback"
    ),
    terraform: Annotated[str, typer.Option(help="terraform executable")] = "terraform",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Move `champion` back to the previous champion and serve its image as stable at 100 %.

    Traffic moves first (terraform apply of the environment's desired state), then the
    registry alias; rerunning after a failure repeats both. Refuses when no previous
    champion is recorded or its image is unknown (see `modelops tag-image`).
    """
    from modelops.deploy.promoter import rollback_champion, rollback_target
    from modelops.deploy.router import TerraformRouter
    from modelops.tracking import TrackingSettings

    name = model_name or _params(params).register_.model_name
    _use_registry(TrackingSettings().tracking_uri)
    rollback_target(name)  # refuse before terraform runs when there is nowhere to go back to
    router = TerraformRouter(env_dir, terraform=terraform)
    result = rollback_champion(name, router, reason)
    typer.echo(
        f"{name}: champion {result.from_version} -> {result.to_version}; "
        f"{env_dir} stable = {result.image} at 100 %, canary removed. "
        f"Commit {env_dir}/deploy.auto.tfvars.json so git records the rollback."
    )


@app.command()
def canary(
    target: Annotated[
        str,
        typer.Option(
            help="`local` (the rehearsal: nginx + Prometheus on this machine) or a terraform "
            "environment folder such as infra/terraform/envs/staging"
        ),
    ] = "local",
    model_version: Annotated[
        str, typer.Option(help="version to roll out: a number or an alias")
    ] = "challenger",
    image: Annotated[
        str | None,
        typer.Option(help="terraform target: the image of --model-version, by digest"),
    ] = None,
    stable: Annotated[
        str,
        typer.Option(
            help="local target: the version serving now (number or alias; an alias that does "
            "not exist yet means a first deploy)"
        ),
    ] = "champion",
    run_dir: Annotated[
        Path, typer.Option(help="state, reports (summary, canary.prom, timeline.png), logs")
    ] = Path("build/canary"),
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            envvar="PROMETHEUS_URL",
            help="terraform target: Prometheus to query (default: canary.prometheus_url)",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="finish the canary saved in --run-dir (after a crash)")
    ] = False,
    interval: Annotated[
        float | None, typer.Option(help="seconds per analysis (default canary.interval_seconds)")
    ] = None,
    rows: Annotated[
        Path | None,
        typer.Option(
            help="local target: input rows for the load (default data/split/test.parquet "
            "when present, else the model's input example)"
        ),
    ] = None,
    rps: Annotated[float, typer.Option(help="local target: requests per second")] = 80.0,
    batch: Annotated[int, typer.Option(help="local target: records per request")] = 10,
    keep_env: Annotated[
        bool, typer.Option(help="local target: leave nginx, services, Prometheus running")
    ] = False,
    stop_env: Annotated[
        bool, typer.Option(help="local target: stop a rehearsal left running, and exit")
    ] = False,
    model_name: Annotated[
        str | None, typer.Option(help="registered model (default: params register.model_name)")
    ] = None,
    terraform: Annotated[str, typer.Option(help="terraform executable")] = "terraform",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Roll a model version out in canary steps; promote it or roll it back on live metrics.

    Exit 0 when the version was promoted, 3 when it was rolled back, 1 on errors.
    """
    import logging

    from modelops.tracking import TrackingSettings

    if stop_env:
        from modelops.deploy.local.env import LocalEnv

        LocalEnv.load(run_dir).stop()
        typer.echo(f"stopped the rehearsal in {run_dir}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per load request otherwise
    p = _params(params)
    if interval is not None:
        p.canary = p.canary.model_copy(update={"interval_seconds": interval})
    name = model_name or p.register_.model_name
    _use_registry(TrackingSettings().tracking_uri)
    if target == "local":
        from modelops.deploy.local.rehearsal import RehearsalConfig, rehearse

        default_rows = Path("data/split/test.parquet")
        config = RehearsalConfig(
            run_dir=run_dir.resolve(),
            model_name=name,
            canary=model_version,
            stable=stable,
            rows=rows if rows is not None else (default_rows if default_rows.is_file() else None),
            rps=rps,
            batch=batch,
            params_path=params,
            keep_env=keep_env,
        )
        result = rehearse(p, config, resume=resume)
        outcome = result.outcome
        load = result.load
        typer.echo(
            f"load: {load['requests']} requests through nginx, by status {load['by_status']}, "
            f"answered by model version {load['by_model_version']}"
        )
        if result.kept:
            typer.echo(
                f"still running: nginx {result.nginx_url}, Prometheus {result.prometheus_url}; "
                f"stop with `modelops canary --stop-env --run-dir {run_dir}`"
            )
    else:
        from modelops.deploy.terraform_canary import terraform_canary

        outcome = terraform_canary(
            p,
            Path(target),
            model_name=name,
            model_version=model_version,
            image=image,
            prometheus_url=prometheus_url or p.canary.prometheus_url,
            run_dir=run_dir,
            resume=resume,
            terraform=terraform,
        )
    _print_outcome(outcome)
    raise typer.Exit(0 if outcome.promoted else 3)


def _print_outcome(outcome: Any) -> None:
    """The timeline of analyses, the decision and where the reports are."""
    from modelops.deploy.state import load_state

    state = load_state(outcome.state_file)
    start = state.started_at
    for record in state.history:
        typer.echo(
            f"  +{record.at - start:6.1f}s  step {record.step + 1} ({record.weight:3d}%)  "
            f"{record.analysis.verdict:12s} {record.analysis.summary()}"
        )
    release = outcome.release
    verdict = "PROMOTED" if outcome.promoted else "ROLLED BACK"
    typer.echo(
        f"{verdict}: {release.model_name} version {release.canary_version} "
        f"({outcome.phase.value} after {outcome.duration_s:.1f}s, {outcome.analyses} analyses): "
        f"{outcome.reason}"
    )
    for kind, path in outcome.reports.items():
        typer.echo(f"  {kind}: {path}")
    typer.echo(f"  state: {outcome.state_file}")


def _use_registry(tracking_uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)


def main() -> None:
    """Entry point: turn refusals and known data/registry errors into one clear line."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n here
    except typer.TyperException as error:  # bad command line: the message, exit 2, no traceback
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            typer.secho(f"error: {error.format_message()}", err=True, fg=typer.colors.RED)
        sys.exit(error.exit_code)
    except (ModelopsError, FileNotFoundError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
