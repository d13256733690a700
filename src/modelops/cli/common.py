"""What the command modules share: the params option and the registry of the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops.registry.client import RegistryClient, open_registry
from modelops.registry.tracking import TrackingSettings

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
DEFAULT_PARAMS = Path("params.yaml")


def registry() -> RegistryClient:
    """The registry at MLFLOW_TRACKING_URI, checked to answer (fails fast with one line)."""
    return open_registry(TrackingSettings())


def actor() -> str:
    """Who runs this command: the GitHub user in a workflow ($GITHUB_ACTOR), else the login."""
    import getpass
    import os

    return os.environ.get("GITHUB_ACTOR") or getpass.getuser()
