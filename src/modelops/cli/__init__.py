"""The `modelops` command: every DVC stage and workflow step is one of these commands.

Top level: the pipeline stages, register, where, pr-comment, drift, drift-issue,
validate, validate-model, export-model, retrain, feedback, and the governance records: history,
record-approval, retire. `modelops deploy ...`: the canary, rollback, image-plan, tag-image and
gitops-commit. `modelops logs prune`: log retention.
"""

from __future__ import annotations

import os
import sys

import typer

from modelops.cli import deploy, governance, monitor, pipeline, registry, retrain
from modelops.errors import ModelopsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="DVC stages, MLflow registry, monitoring and deploy commands for this template.",
)
app.add_typer(pipeline.app)
app.add_typer(registry.app)
app.add_typer(governance.app)
app.add_typer(monitor.app)
app.add_typer(retrain.app)
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.logs_app, name="logs")


@app.callback()
def _main() -> None:
    """Quiet MLflow's progress bars; they drown the stage output in logs."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


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
    except Exception as error:
        if not type(error).__module__.startswith(("mlflow", "requests", "urllib3")):
            raise
        # MLflow gave up (its retry budget spent, or the server refused): one line, no trace.
        from modelops.registry.tracking import TrackingSettings

        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        typer.secho(
            f"error: MLflow at {TrackingSettings().tracking_uri}: {first[:500]}",
            err=True,
            fg=typer.colors.RED,
        )
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
