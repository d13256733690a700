"""The data loop: `modelops retrain` (what `make retrain`, the weekly schedule and a drift
dispatch run) and `modelops feedback` (production labels into the data source)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption
from modelops.config import load_params
from modelops.errors import Refused

app = typer.Typer()

BATCH_REPORT = Path("reports/batches.json")
# What `dvc repro` changes that git tracks: the lock file and the uncached reports.
COMMITTED = [Path("dvc.lock"), Path("reports")]


def _dvc(*args: str) -> int:
    """Run dvc with its output shown; never wait for an answer (CI gives no terminal)."""
    typer.echo(f"$ dvc {' '.join(args)}")
    return subprocess.run(["dvc", *args], stdin=subprocess.DEVNULL, check=False).returncode


def batch_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Batches that entered the training table, were quarantined, or left it since `before`."""
    old = {b["name"]: b for b in before.get("batches", [])}

    def changed(batch: dict[str, Any], status: str) -> bool:
        was = old.get(batch["name"])
        return batch["status"] == status and (
            was is None or was["status"] != status or was.get("md5") != batch.get("md5")
        )

    now = after.get("batches", [])
    included_now = {b["name"] for b in now if b["status"] == "included"}
    return {
        "new": [b["name"] for b in now if changed(b, "included")],
        "quarantined": [b["name"] for b in now if changed(b, "quarantined")],
        "left": [n for n, b in old.items() if b["status"] == "included" and n not in included_now],
    }


def _problems(after: dict[str, Any], names: list[str]) -> list[str]:
    lines = []
    for batch in after.get("batches", []):
        if batch["name"] in names:
            lines += [f"{batch['name']}: {p['message']}" for p in batch.get("problems", [])]
    return lines


@app.command()
def retrain(
    pull: Annotated[
        bool, typer.Option(help="dvc pull the outputs and the run cache first (CI: fresh runner)")
    ] = False,
    push_data: Annotated[
        bool, typer.Option(help="dvc push the outputs and the run cache after the pipeline")
    ] = False,
    commit: Annotated[
        bool, typer.Option(help="commit dvc.lock and the reports when they changed")
    ] = True,
    push: Annotated[bool, typer.Option(help="push that commit to --remote/--branch")] = False,
    remote: Annotated[str, typer.Option(help="git remote to push to")] = "origin",
    branch: Annotated[str, typer.Option(help="branch to push to")] = "main",
    outputs: Annotated[
        Path | None,
        typer.Option(help="append model_name=, version=, created=, model_uri=, new_batches=, ..."),
    ] = None,
    summary: Annotated[Path, typer.Option(help="markdown summary to write")] = Path(
        "build/retrain.md"
    ),
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Refresh the source, dvc repro, register if the gate passes, commit what changed."""
    from modelops.ci.github import run_url_from_env
    from modelops.cli.registry import register_gated, write_outputs
    from modelops.deploy.publish import publish_paths
    from modelops.pipeline.batches import read_batch_report

    p = load_params(params)
    before = read_batch_report(BATCH_REPORT)
    if pull and _dvc("pull", "--run-cache", "--allow-missing") != 0:
        typer.secho("dvc pull found nothing for some outputs; they are rebuilt", err=True)
    typer.echo(f"source {p.source.url}: looking for new batches (dvc repro)")
    failed = _dvc("repro", *(["--pull"] if pull else [])) != 0
    after = read_batch_report(BATCH_REPORT)
    changes = batch_changes(before, after)
    lines = [f"## Retrain from `{p.source.url}`", ""]
    if changes["new"]:
        lines.append(f"- new batch(es) in the training table: {', '.join(changes['new'])}")
    else:
        lines.append("- no new batch in the source: the training table has nothing new")
    if changes["left"]:
        window = p.source.window.model_dump(exclude_none=True)
        lines.append(f"- left the window {window}: {', '.join(changes['left'])}")
    if changes["quarantined"]:
        lines.append(f"- **quarantined** (not trained on): {', '.join(changes['quarantined'])}")
        lines += [f"  - {line}" for line in _problems(after, changes["quarantined"])]
    still = [
        b["name"]
        for b in after.get("batches", [])
        if b["status"] == "quarantined" and b["name"] not in changes["quarantined"]
    ]
    if still:
        lines.append(f"- still quarantined (reports/batches.json says why): {', '.join(still)}")
    ref, created = None, False
    if failed:
        lines.append("- **the pipeline failed** (see the log; a failed gate registers nothing)")
    else:
        if push_data and _dvc("push", "--run-cache") != 0:
            failed = True
            lines.append(
                "- **dvc push failed**: nothing committed (the lock would point at data "
                "the remote lacks)"
            )
        else:
            ref, created = register_gated(p, Path("models/run.json"), Path("reports/gate.json"))
            lines.append(
                f"- registered {ref.name} version {ref.version} (alias challenger)"
                if created
                else f"- nothing registered: {ref.name} version {ref.version} already holds "
                "this training run"
            )
    if not failed and commit:
        subject = _subject(changes, ref, created)
        run_url = run_url_from_env()
        body = "\n".join(lines[2:]) + (f"\n\nRun: {run_url}" if run_url else "")
        paths = [path for path in COMMITTED if path.exists()]
        if _inside(p.source.url, Path.cwd()):  # a source in the repository: its batches too
            paths.append(Path(p.source.url))
        done = publish_paths(
            Path.cwd(),
            paths,
            f"{subject}\n\n{body}\n",
            push=push,
            remote=remote,
            branch=branch,
        )
        if done.commit is None:
            lines.append("- dvc.lock and the reports unchanged: nothing to commit")
        else:
            where = f"pushed to {remote} {branch}" if done.pushed else "committed locally"
            lines.append(f"- dvc.lock and the reports {where} ({done.commit[:12]})")
    text = "\n".join(lines) + "\n"
    typer.echo(text)
    gate = Path("reports/gate.md")
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(text + ("\n" + gate.read_text() if gate.is_file() else ""))
    if outputs is not None:
        if ref is not None:
            write_outputs(outputs, ref, created)
        else:
            outputs.parent.mkdir(parents=True, exist_ok=True)
            with outputs.open("a") as handle:
                handle.write("created=false\n")
        with outputs.open("a") as handle:
            handle.write(
                f"new_batches={len(changes['new'])}\nquarantined={len(changes['quarantined'])}\n"
            )
    if failed:
        raise Refused(f"retrain failed; nothing registered or committed. Summary: {summary}")


def _inside(url: str, repo: Path) -> bool:
    """True for a source folder inside the repository (the default data/incoming)."""
    if "://" in url:
        return False
    return Path(url).resolve().is_relative_to(repo.resolve()) and Path(url).exists()


def _subject(changes: dict[str, list[str]], ref: Any, created: bool) -> str:
    parts = []
    if changes["new"]:
        parts.append(f"+{len(changes['new'])} batch(es)")
    if changes["quarantined"]:
        parts.append(f"{len(changes['quarantined'])} quarantined")
    if changes["left"]:
        parts.append(f"{len(changes['left'])} left the window")
    if created and ref is not None:
        parts.append(f"registered {ref.name} v{ref.version}")
    return "retrain: " + (", ".join(parts) or "pipeline outputs updated")


@app.command()
def feedback(
    logs: Annotated[
        Path, typer.Option(help="prediction log file, or the logs' folder (read recursively)")
    ],
    labels: Annotated[
        Path, typer.Option(help="CSV/parquet with request_id, row, label, labeled_at")
    ],
    source: Annotated[
        str | None, typer.Option(help="where to write the batch (default: source.url)")
    ] = None,
    unmatched: Annotated[
        Path | None,
        typer.Option(help="write the labels that matched no logged prediction here (CSV)"),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="the counts as JSON")] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Join prediction logs with labels that arrived later; write a labeled batch to the source."""
    from modelops.monitor.feedback import batch_name, labeled_batch, write_batch
    from modelops.monitor.labels import join_feedback, read_labels
    from modelops.monitor.predlogs import read_logs

    p = load_params(params)
    predictions, files, notes = read_logs(logs)
    label_frame, label_files = read_labels(labels)
    c = join_feedback(predictions, label_frame, label_files)
    batch = labeled_batch(c, p.data)
    written = None
    if unmatched is not None and not c.unmatched_frame.empty:
        unmatched.parent.mkdir(parents=True, exist_ok=True)
        c.unmatched_frame.to_csv(unmatched, index=False)
    if len(batch):
        written = write_batch(batch, source or p.source.url, batch_name())
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({**c.counts(), "batch": written}, indent=2) + "\n")
    for note in notes:  # e.g. a cut last line skipped
        typer.echo(note)
    typer.echo(
        f"{c.labels} label(s), {c.predictions} prediction(s) in {len(files)} log file(s): "
        f"{c.matched} joined; {c.unmatched_labels} unmatched label(s)"
        + (f" (kept in {unmatched})" if unmatched is not None and c.unmatched_labels else "")
        + f", {c.duplicate_labels} duplicate label(s) ({c.conflicting_labels} disagreeing; the "
        f"latest labeled_at kept), {c.missing_labels} empty label(s), "
        f"{c.duplicate_predictions} prediction(s) logged twice, "
        f"{c.unlabeled_predictions} prediction(s) not labeled yet"
        + (
            f", {c.unkeyed_predictions} log line(s) without request_id/row"
            if c.unkeyed_predictions
            else ""
        )
    )
    if written is None:
        raise Refused(
            f"no label matched a logged prediction: nothing written. Check that --logs holds "
            f"the predictions these labels answer ({logs}) and the labels' request_id/row"
        )
    typer.echo(f"labeled batch of {c.matched} row(s) -> {written}")
