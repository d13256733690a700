"""Governance records: a model's history, approvals on record, retirement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, actor, registry
from modelops.config import load_params
from modelops.errors import Refused

app = typer.Typer()

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "--model-name", help="registered model (default: params register)"),
]


def _detail(event: dict[str, Any]) -> str:
    kind = event["event"]
    if kind == "registered":
        return (
            f"run {event['run_id'][:12]}, commit {str(event['git_commit'])[:12]}, data "
            f"{str(event['data_md5'] or '?')[:12]}, gate {event['gate'] or '?'} "
            f"(AUC {event['gate_auc'] or '?'})"
        )
    if kind == "canary":
        return f"{event['result']} after {event['duration_s']} s: {event['reason']}"
    if kind == "promoted":
        return f"image {event.get('image') or '?'}"
    return str(event.get("reason") or "")


def _table(history: dict[str, Any]) -> str:
    rows = [("AT", "VERSION", "ENV", "EVENT", "BY", "DETAIL")]
    rows += [
        (
            e["at"] or "?",
            f"v{e['version']}",
            e["env"] or "-",
            e["event"],
            e["by"] or "-",
            _detail(e),
        )
        for e in history["events"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    aliases = ", ".join(f"{a} -> v{v}" for a, v in history["aliases"].items()) or "none"
    return "\n".join([*lines, f"aliases now: {aliases}"])


@app.command()
def history(
    env: Annotated[str | None, typer.Option(help="only this environment (e.g. production)")] = None,
    model_name: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """The model's timeline: registered, canaries, approvals, promotions, rollbacks, retired."""
    from modelops.registry.history import model_history

    name = model_name or load_params(params).register_.model_name
    found = model_history(registry(), name, env)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    elif not found["events"] and env:
        typer.echo(f"{name}: nothing recorded in {env} yet (no canary, approval or rollback)")
    elif not found["events"]:
        typer.echo(f"{name}: no versions registered yet (`make run` registers the first)")
    else:
        typer.echo(_table(found))


@app.command("record-approval")
def record_approval(
    version: Annotated[str, typer.Option(help="model version approved")],
    env: Annotated[str, typer.Option(help="environment it was approved for")],
    approver: Annotated[list[str], typer.Option(help="login of an approver (repeat for each one)")],
    at: Annotated[str, typer.Option(help="when, ISO 8601 with offset: 2026-12-05T08:30:00Z")],
    model_name: ModelOption = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Record who approved a version for an environment, and when (tags approved.<env>.*)."""
    from modelops.registry.approvals import record_approval as record

    name = model_name or load_params(params).register_.model_name
    tags = record(registry(), name, version, env, approver, at)
    typer.echo(
        f"models:/{name}/{version}: approved for {env} by {tags[f'approved.{env}.by']} "
        f"at {tags[f'approved.{env}.at']}"
    )


def served_versions(envs_dir: Path) -> dict[str, set[str]]:
    """Per environment folder with a desired-state file: the versions it runs."""
    from modelops.deploy.gitops import STATE_FILE, read_state

    served: dict[str, set[str]] = {}
    for state in sorted(envs_dir.glob(f"*/{STATE_FILE}")):
        split = read_state(state.parent)
        served[state.parent.name] = {
            v for v in (split.stable_model_version, split.canary_model_version) if v
        }
    return served


@app.command()
def retire(
    version: Annotated[str, typer.Argument(help="model version to retire")],
    reason: Annotated[str, typer.Option(help="why it is retired")],
    by: Annotated[str | None, typer.Option(help="who retires it (default: $GITHUB_ACTOR)")] = None,
    envs_dir: Annotated[
        Path, typer.Option(help="folder of the environments' desired states")
    ] = Path("infra/terraform/envs"),
    model_name: ModelOption = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Retire a version no environment serves (tags retired*, challenger alias removed).

    Refuses when an alias, an environment's desired state or the rollback chain points at it.
    """
    from modelops.registry.retire import retire_version

    name = model_name or load_params(params).register_.model_name
    if not envs_dir.is_dir():
        raise Refused(
            f"{envs_dir}: no environments there, so what is live cannot be checked; run from "
            "the repository root or pass --envs-dir. Nothing was changed"
        )
    served = served_versions(envs_dir)
    tags = retire_version(registry(), name, version, by or actor(), reason, served)
    typer.echo(
        f"models:/{name}/{version}: retired by {tags['retired_by']} at {tags['retired_at']} "
        f"({tags['retired_reason']})"
    )
