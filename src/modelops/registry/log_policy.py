"""The prediction-log redaction policy that travels with an exported model folder.

`modelops export-model` writes `serve.log_redact` from params.yaml into the folder as
`log_redact.json`; the service reads it there (serving/redact.py applies it), so the image
carries the policy it was built with and the DVC train stage does not depend on it. A folder
without the file (a model straight from training) logs every input column as received.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelops.errors import Refused

LOG_POLICY_FILE = "log_redact.json"


@dataclass(frozen=True)
class LogRedaction:
    """Columns dropped from the logged features, and columns logged as an HMAC-SHA256."""

    drop: list[str] = field(default_factory=list)
    hash: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return sorted({*self.drop, *self.hash})


def from_params(params_path: str | Path) -> LogRedaction:
    """`serve.log_redact` of a params file."""
    from modelops.config import load_params

    policy = load_params(params_path).serve.log_redact
    return LogRedaction(drop=list(policy.drop), hash=list(policy.hash))


def write_policy(folder: Path, policy: LogRedaction, inputs: list[str]) -> Path:
    """Write the policy into a model folder; refuse columns that are not model inputs."""
    unknown = [c for c in policy.columns if c not in inputs]
    if unknown:
        raise Refused(
            f"serve.log_redact names {unknown}, which the model does not take as input "
            f"(its inputs: {inputs}); fix the names in params.yaml"
        )
    path = folder / LOG_POLICY_FILE
    path.write_text(json.dumps(asdict(policy), indent=2) + "\n")
    return path


def read_policy(folder: Path) -> LogRedaction | None:
    """The folder's policy, or None when it has none."""
    path = folder / LOG_POLICY_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return LogRedaction(drop=list(raw.get("drop", [])), hash=list(raw.get("hash", [])))
    except (ValueError, AttributeError, TypeError) as error:
        raise Refused(
            f"{path}: not a redaction policy ({error}); re-export the model with "
            "`modelops export-model`"
        ) from error
