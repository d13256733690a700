"""`modelops deploy ...`: the image plan, the canary, rollback and the GitOps commit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelops.cli.common import DEFAULT_PARAMS, ParamsOption, actor, registry
from modelops.config import load_params
from modelops.errors import Refused

if TYPE_CHECKING:
    from modelops.deploy.controller import Outcome
    from modelops.registry.client import RegistryClient

app = typer.Typer(
    no_args_is_help=True, help="Images, canary releases, rollbacks and the GitOps state."
)


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


@app.command("image")
def image(
    model_dir: Annotated[Path, typer.Option(help="folder written by export-model")] = Path(
        "build/model"
    ),
    image_name: Annotated[
        str, typer.Option(help="image name: host[:port]/path, lower case, no tag")
    ] = "127.0.0.1:5000/modelops/credit-scoring",
    commit: Annotated[str, typer.Option(help="git commit of the code built (default HEAD)")] = "",
    base: Annotated[
        str,
        typer.Option(
            help="PYTHON_IMAGE: empty = the Dockerfile's pinned python:3.11-slim; `local` = a "
            "base built here with mmdebstrap (no registry access needed); `auto` = local "
            "without Docker, else empty; or an image reference"
        ),
    ] = "auto",
    push: Annotated[bool, typer.Option(help="push every tag and print the digest")] = False,
    context: Annotated[Path, typer.Option(help="build context (holds the Dockerfile)")] = Path("."),
    engine_name: Annotated[
        str, typer.Option("--engine", help="podman or docker (default: $MODELOPS_ENGINE, podman)")
    ] = "",
    outputs: Annotated[
        Path | None, typer.Option(help="append image=, digest=, ref= ($GITHUB_OUTPUT)")
    ] = None,
) -> None:
    """Build the service image for an exported model (tags: model version, git commit) and
    push it: prints image@digest, the reference a deploy pins."""
    import subprocess

    from modelops.deploy.base_image import resolve_base
    from modelops.deploy.engine import detect
    from modelops.deploy.image import build_image, plan_image, push_image

    engine = detect(engine_name or None)
    if not commit:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=context, capture_output=True, text=True, check=True
        ).stdout.strip()
    plan = plan_image(model_dir, "", "", commit, image_name)
    python_image = resolve_base(base, engine)
    image_id = build_image(plan, engine, context, python_image)
    typer.echo(f"built {image_id[:12]}: {', '.join(plan.tags)}")
    if not push:
        return
    pushed = push_image(plan, engine)
    if outputs is not None:
        outputs.parent.mkdir(parents=True, exist_ok=True)
        with outputs.open("a", encoding="utf-8") as handle:
            handle.write(pushed.to_outputs())
    typer.echo(pushed.ref)


@app.command("registry")
def local_registry(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000,
    root: Annotated[Path, typer.Option(help="config, storage and log folder")] = Path(
        "build/registry"
    ),
    stop: Annotated[bool, typer.Option(help="stop the registry started here")] = False,
) -> None:
    """Start a local container registry on 127.0.0.1:PORT (docker-registry), or stop it."""
    from modelops.deploy.local import registry as local

    if stop:
        typer.echo("stopped" if local.stop(root, port) else f"no registry of {root} on {port}")
        return
    typer.echo(local.start(root, port))


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

    name = model_name or load_params(params).register_.model_name
    if not IMAGE_PATTERN.fullmatch(image):
        raise Refused(
            f"image {image!r} is not pinned by digest: use a reference like "
            "ghcr.io/owner/repo@sha256:<64 hex> (the digest `docker push` printed)"
        )
    RegistryPromoter(registry()).record_image(name, version, image)
    typer.echo(f"models:/{name}/{version}: image = {image}")


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
    service_url: Annotated[
        str | None,
        typer.Option(
            envvar="SERVICE_URL",
            help="terraform target: the environment's model service address; a first deploy "
            "smoke-tests the deployed service there",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="finish the canary saved in --run-dir (after a crash)")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(help="seconds per step (default canary.interval_seconds; checks stay <= it)"),
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
    dry_run: Annotated[
        bool,
        typer.Option(
            help="terraform target: analyse live metrics and print every decision; move no "
            "traffic and no alias (state in <run dir>/dry-run)"
        ),
    ] = False,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="judge a recorded canary (<run dir>/metrics-record.jsonl) again with --params "
            "and print each decision; nothing else runs"
        ),
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Roll a model version out in canary steps; promote it or roll it back on live metrics.

    Exit 0 when the version was promoted, 3 when it was rolled back, 1 on errors.
    """
    import logging

    if replay is not None:
        _replay(replay, load_params(params))
        return
    if target == "local" and dry_run:
        raise Refused(
            "--dry-run analyses the live traffic of an environment; the local rehearsal has "
            "none on the canary until traffic moves: use --target infra/terraform/envs/<env>, "
            "or --replay the metrics a rehearsal recorded"
        )

    if stop_env:
        from modelops.deploy.local.env import LocalEnv

        LocalEnv.load(run_dir).stop()
        typer.echo(f"stopped the rehearsal in {run_dir}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per load request otherwise
    p = load_params(params)
    if interval is not None:
        p.canary = p.canary.model_copy(update={"interval_seconds": interval})
    name = model_name or p.register_.model_name
    store = registry()
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
        result = rehearse(p, config, store, resume=resume)
        outcome = result.outcome
        load = result.load
        typer.echo(
            f"load: {load['requests']} requests through nginx, by status {load['by_status']}, "
            f"answered by model version {load['by_model_version']}"
        )
        if result.kept:
            typer.echo(
                f"still running: nginx {result.nginx_url}, Prometheus {result.prometheus_url}; "
                f"stop with `modelops deploy canary --stop-env --run-dir {run_dir}`"
            )
    else:
        from modelops.deploy.terraform_canary import terraform_canary

        outcome = terraform_canary(
            p,
            Path(target),
            store,
            model_name=name,
            model_version=model_version,
            image=image,
            prometheus_url=prometheus_url or p.canary.prometheus_url,
            service_url=service_url,
            run_dir=run_dir,
            resume=resume,
            terraform=terraform,
            dry_run=dry_run,
        )
    _print_outcome(outcome, "DRY RUN, would be " if dry_run else "")
    if dry_run:
        typer.echo("DRY RUN: no traffic and no alias moved")
        return
    _record_receipt(store, outcome, None if target == "local" else Path(target))
    raise typer.Exit(0 if outcome.promoted else 3)


# The PromQL behind each check, per track (deploy/analysis.py builds the same queries).
def _check_queries(
    env: str, window: int, offset: int, score_window: int
) -> dict[str, dict[str, list[str]]]:
    from modelops.deploy import analysis as a

    builders = {
        "requests": ((a.requests_query,), window),
        "error_rate": ((a.errors_query, a.requests_query), window),
        "p99_latency": ((a.p99_query,), window),
        "score_psi": ((a.score_buckets_query,), score_window),
    }
    tracks = {"canary": 0, "stable": offset}
    return {
        check: {t: [build(env, t, w, o) for build in fns] for t, o in tracks.items()}
        for check, (fns, w) in builders.items()
    }


def _record_receipt(store: RegistryClient, outcome: Outcome, env_dir: Path | None) -> None:
    """Append the decision's receipt to the version (registry/receipts.py); a failure to record
    it is reported loudly but does not change the canary's exit code (traffic already moved)."""
    import hashlib
    import time

    from mlflow.exceptions import MlflowException

    from modelops.ci.github import run_url_from_env
    from modelops.deploy.gitops import state_path
    from modelops.deploy.state import Phase, load_state
    from modelops.errors import ModelopsError
    from modelops.registry.receipts import (
        AnalysisEvidence,
        CanaryDecision,
        CheckEvidence,
        record_canary_decision,
    )

    state = load_state(outcome.state_file)
    analyses = []
    for record in state.history:
        a = record.analysis
        score_window = a.score_window_s or a.window_s
        queries = _check_queries(state.env, a.window_s, a.stable_offset_s, score_window)
        checks = []
        for c in a.checks:
            fields = c.to_dict()
            fields.pop("query", None)  # the canary side's query; the receipt keeps both tracks'
            checks.append(CheckEvidence(queries=queries.get(c.name, {}), **fields))
        analyses.append(
            AnalysisEvidence(
                record.at,
                record.step + 1,
                record.weight,
                a.window_s,
                a.stable_offset_s,
                a.verdict,
                checks,
            )
        )
    blob = None
    if env_dir is not None and state_path(env_dir).is_file():
        content = state_path(env_dir).read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False)
    release = state.release
    decision = CanaryDecision(
        model_name=release.model_name,
        version=release.canary_version,
        env=state.env,
        decision={Phase.SUCCEEDED: "promoted", Phase.FAILED: "rolled back"}.get(
            state.phase, state.phase.value
        ),
        reason=state.reason,
        image=release.canary_image,
        stable_version=release.stable_version,
        stable_image=release.stable_image,
        started_at=state.started_at,
        decided_at=state.decided_at if state.decided_at is not None else time.time(),
        analyses=analyses,
        gitops_file=str(state_path(env_dir)) if env_dir is not None else None,
        gitops_blob=blob.hexdigest() if blob is not None else None,
        by=actor(),
        run_url=run_url_from_env(),
    )
    try:
        path = record_canary_decision(store, decision)
    except (ModelopsError, MlflowException, OSError) as error:
        typer.secho(
            f"error: the decision receipt was not recorded ({error}); rerun with --resume "
            "--run-dir to record it",
            err=True,
            fg=typer.colors.RED,
        )
        return
    typer.echo(f"  receipt: models:/{release.model_name}/{release.canary_version} {path}")


def _replay(record: Path, params: Any) -> None:
    """Print what the controller would decide on each recorded analysis under `params`."""
    from modelops.deploy.replay import replay as replay_record

    judged = replay_record(record, params)
    for item in judged:
        typer.echo(item.line())
    last = judged[-1].decision if judged else "nothing recorded"
    typer.echo(f"REPLAY of {record} ({len(judged)} analyses): {last}")


def _print_outcome(outcome: Any, prefix: str = "") -> None:
    """The timeline of analyses, the decision and where the reports are."""
    from modelops.deploy.report import where
    from modelops.deploy.state import load_state

    state = load_state(outcome.state_file)
    start = state.started_at
    for record in state.history:
        typer.echo(
            f"  +{record.at - start:6.1f}s  {where(record)} ({record.weight:3d}%)  "
            f"{record.analysis.verdict:12s} {record.analysis.summary()}"
        )
    release = outcome.release
    verdict = prefix + ("PROMOTED" if outcome.promoted else "ROLLED BACK")
    typer.echo(
        f"{verdict}: {release.model_name} version {release.canary_version} "
        f"({outcome.phase.value} after {outcome.duration_s:.1f}s, {outcome.analyses} analyses): "
        f"{outcome.reason}"
    )
    for kind, path in outcome.reports.items():
        typer.echo(f"  {kind}: {path}")
    typer.echo(f"  state: {outcome.state_file}")


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
    champion is recorded or its image is unknown (see `modelops deploy tag-image`).
    """
    from modelops.deploy.promoter import rollback_champion, rollback_target
    from modelops.deploy.router import TerraformRouter

    name = model_name or load_params(params).register_.model_name
    store = registry()
    rollback_target(store, name)  # refuse before terraform runs when there is nowhere to go back
    router = TerraformRouter(env_dir, terraform=terraform)
    result = rollback_champion(store, name, router, reason)
    env = env_dir.resolve().name
    store.tag_version(
        name, result.from_version, {"rolled_back_by": actor(), "rolled_back_env": env}
    )
    typer.echo(
        f"{name}: champion {result.from_version} -> {result.to_version}; "
        f"{env_dir} stable = {result.image} at 100 %, canary removed. "
        f"Commit {env_dir}/deploy.auto.tfvars.json so git records the rollback."
    )


@app.command("gitops-commit")
def gitops_commit(
    env_dir: Annotated[Path, typer.Option(help="infra/terraform/envs/<env>")],
    reason: Annotated[str, typer.Option(help="why the state changed (commit subject)")],
    push: Annotated[bool, typer.Option(help="push the commit to --remote/--branch")] = False,
    remote: Annotated[str, typer.Option(help="git remote to push to")] = "origin",
    branch: Annotated[str, typer.Option(help="branch that holds the desired state")] = "main",
) -> None:
    """Commit the environment's desired-state file if it changed (and push it)."""
    from modelops.ci.github import run_url_from_env
    from modelops.deploy.publish import publish_state

    done = publish_state(
        env_dir, reason, push=push, remote=remote, branch=branch, run_url=run_url_from_env()
    )
    if done.commit is None:
        typer.echo(f"{env_dir}: desired state unchanged, nothing to commit")
    else:
        where = f"pushed to {remote} {branch}" if done.pushed else "committed locally"
        typer.echo(f"{env_dir}: desired state {where} ({done.commit[:12]})")
