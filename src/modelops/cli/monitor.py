"""Monitoring commands: data drift, the drift issue body, model validation on fresh labels,
the label-aware AUC guard on the served versions, and prediction-log retention."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, registry
from modelops.config import load_params

app = typer.Typer()


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
    environment: Annotated[
        str | None, typer.Option(help="only the log lines of this environment")
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
    from modelops.monitor.drift_report import JSON_FILE, exit_code, headline, run_drift
    from modelops.monitor.issue import write_outputs
    from modelops.registry.export import expand_model_uri
    from modelops.registry.model_source import is_registry_uri

    if fail_on not in ("drift", "warning"):
        raise typer.BadParameter("use drift or warning", param_hint="--fail-on")
    p = load_params(params)
    reference = expand_model_uri(reference, params)
    store = registry() if is_registry_uri(reference) else None
    report = run_drift(
        data,
        reference,
        p,
        out_dir,
        reference_data,
        model_version,
        registry=store,
        environment=environment,
    )
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
    from modelops.ci.github import run_url_from_env
    from modelops.monitor.issue import write_issue

    title = write_issue(report_dir, out, environment, logs or "?", run_url_from_env(), outputs)
    typer.echo(f"{title} -> {out}")


@app.command("validate-model")
def validate_model(
    model: Annotated[
        str, typer.Option(help="models:/<name>@<alias> (or /<version>) or a model folder")
    ],
    data: Annotated[Path, typer.Option(help="fresh labeled rows (CSV/parquet) with the target")],
    report: Annotated[Path, typer.Option(help="JSON report to write")] = Path(
        "reports/model_validation.json"
    ),
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Concept drift: AUC on fresh labeled data; exit 3 when it is under gate.min_auc."""
    from modelops.monitor.model_validation import validate_model as judge
    from modelops.monitor.model_validation import write_validation
    from modelops.registry.model_source import is_registry_uri

    p = load_params(params)
    result = judge(model, data, p, registry() if is_registry_uri(model) else None)
    write_validation(result, report)
    typer.echo(result.summary())
    if not result.passed:
        raise typer.Exit(3)


def served_versions(envs_dir: Path) -> dict[str, str]:
    """Environment -> the stable model version its GitOps file says it serves."""
    from modelops.deploy.gitops import read_state, state_path

    if not envs_dir.is_dir():
        return {}
    return {
        env.name: read_state(env).stable_model_version
        for env in sorted(envs_dir.iterdir())
        if state_path(env).is_file()
    }


@app.command()
def validate(
    logs: Annotated[Path, typer.Option(help="prediction logs: the partitioned folder or a file")],
    labels: Annotated[
        Path, typer.Option(help="labels (CSV/parquet or a folder): request_id, row, label")
    ],
    envs_dir: Annotated[
        Path, typer.Option(help="GitOps folders: which version each environment serves")
    ] = Path("infra/terraform/envs"),
    environment: Annotated[str | None, typer.Option(help="judge only this environment")] = None,
    out_dir: Annotated[Path, typer.Option(help="guard.json (verdict, actions), guard.md")] = Path(
        "reports/auc_guard"
    ),
    issue_dir: Annotated[
        Path, typer.Option(help="issue-<environment>.md per failed environment")
    ] = Path("build/auc-guard"),
    outputs: Annotated[
        Path | None, typer.Option(help="append verdict=, act=, exit_code= ($GITHUB_OUTPUT)")
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option(help="exit 0 whatever the verdict (read it from --outputs)")
    ] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """The AUC guard: served AUC on labels that arrived later, against the gate.

    Joins the logs with the labels (request_id, row), then for the version each environment
    serves: ROC AUC with a DeLong interval, failing when the interval is wholly under
    gate.min_auc or under the version's gate AUC minus monitor.max_auc_drop. Exit codes: 0 ok,
    3 failed, 4 inconclusive (too few labels, or an interval across a line), 1 bad input.
    """
    from modelops.ci.github import run_url_from_env
    from modelops.errors import ModelopsError
    from modelops.monitor.auc_guard import EXIT_CODES, judge, to_markdown, write_guard
    from modelops.monitor.labels import join_feedback, read_labels
    from modelops.monitor.predlogs import read_logs

    p = load_params(params)
    frame, _, log_notes = read_logs(logs)
    label_frame, label_files = read_labels(labels)
    feedback = join_feedback(frame, label_frame, label_files)
    served = served_versions(envs_dir)
    store = registry()
    name = p.register_.model_name

    def gate_auc(version: str) -> float | None:
        try:
            value = store.version_tags(name, version).get("gate_auc")
        except ModelopsError:
            return None
        return float(value) if value is not None else None

    report = judge(feedback, served, gate_auc, p, environment)
    report.notes.extend(log_notes)  # e.g. a torn last line skipped
    write_guard(report, out_dir, issue_dir, run_url_from_env())
    typer.echo(to_markdown(report))
    code = EXIT_CODES[report.verdict]
    if outputs is not None:
        outputs.parent.mkdir(parents=True, exist_ok=True)
        with outputs.open("a", encoding="utf-8") as handle:
            act = str(report.verdict == "failed").lower()
            handle.write(f"verdict={report.verdict}\nact={act}\nexit_code={code}\n")
    raise typer.Exit(0 if exit_zero else code)


logs_app = typer.Typer(help="Prediction logs in a file store: retention.")


@logs_app.command()
def prune(
    log_dir: Annotated[
        Path, typer.Option(help="the service's MODELOPS_PREDICTION_LOG folder (or a copy)")
    ],
    keep_days: Annotated[
        int | None, typer.Option(help="days kept, today included (default monitor.retention_days)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="list what would be deleted; delete nothing")
    ] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Delete the day partitions (date=YYYY-MM-DD) older than the retention window."""
    from modelops.monitor.retention import prune as prune_logs

    days = keep_days if keep_days is not None else load_params(params).monitor.retention_days
    result = prune_logs(log_dir, days, dry_run=dry_run)
    for folder in result.deleted:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {folder}")
    typer.echo(result.summary())
