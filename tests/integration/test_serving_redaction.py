"""No PII by accident, in a real running service: `serve.log_redact`'s columns, carried in
the exported model folder, never reach the prediction log's day partition as sent (dropped,
or HMAC-SHA256 keyed by the salt), and the monitor's reader skips them; a file-like log
setting and hashing without a salt stop the service at start with one clear line."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from modelops.config import Params
from modelops.monitor.drift import check_columns
from modelops.monitor.inputs import read_current
from modelops.registry.export import export_model
from modelops.registry.log_policy import LOG_POLICY_FILE, LogRedaction
from serving.process import ServiceProcess

pytestmark = pytest.mark.integration
POLICY = LogRedaction(drop=["Age", "Income"], hash=["Job"])
SALT = "test-salt-0123456789abcdef"


@pytest.fixture(scope="module")
def redacting_model(
    trained_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The trained model exported as the image gets it, with a redaction policy."""
    out = tmp_path_factory.mktemp("redacting") / "model"
    export_model(str(trained_model["model_dir"]), out, redaction=POLICY)
    assert json.loads((out / LOG_POLICY_FILE).read_text()) == {
        "drop": POLICY.drop,
        "hash": POLICY.hash,
    }
    return out


def test_redacted_columns_never_reach_the_log(
    redacting_model: Path, trained_model: dict[str, Any], tmp_path: Path, params: Params
) -> None:
    test = pd.read_parquet(trained_model["test_path"]).head(60)
    rows = json.loads(test[params.data.features].to_json(orient="records"))
    logs = tmp_path / "logs"
    env = {
        "MODELOPS_PREDICTION_LOG": str(logs),
        "MODELOPS_LOG_HASH_SALT": SALT,
        "MODELOPS_PREDICTION_LOG_FLUSH_SECONDS": "0.1",
    }
    with (
        ServiceProcess(
            model=redacting_model, workers=2, env=env, log=tmp_path / "s.log"
        ) as service,
        httpx.Client(timeout=10) as client,
    ):
        for start in range(0, 60, 10):
            answer = client.post(f"{service.url}/predict", json=rows[start : start + 10])
            assert answer.status_code == 200, answer.text
    host = socket.gethostname()
    day = datetime.now(UTC).date().isoformat()
    files = sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*") if p.is_file())
    assert files == [f"date={day}/predictions-{host}.jsonl"]  # both workers, one day file
    raw = (logs / files[0]).read_bytes()
    lines = [json.loads(x) for x in raw.splitlines()]
    assert len(lines) == 60
    for column in POLICY.drop:
        assert f'"{column}":'.encode() not in raw
    for job in set(test["Job"].dropna()):
        assert f'"{job}"'.encode() not in raw, job  # the raw category is nowhere on disk
    expected = [
        None
        if v is None
        else hmac.new(SALT.encode(), json.dumps(v).encode(), hashlib.sha256).hexdigest()
        for v in (r["Job"] for r in rows)
    ]
    assert [x["features"]["Job"] for x in lines] == expected
    assert all(x["redacted"] == ["Age", "Income", "Job"] for x in lines)
    assert lines[0]["features"]["Seniority"] == rows[0]["Seniority"]  # the rest as sent
    # The monitor reads the partitioned folder and leaves the redacted columns out.
    current = read_current(logs)
    assert current.redacted == ["Age", "Income", "Job"] and len(current.frame) == 60
    check_columns(current.frame, params.data, str(logs), skip=current.redacted)


def start(model: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving", "--model", str(model)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_bad_log_settings_stop_the_service_at_start(redacting_model: Path, tmp_path: Path) -> None:
    file_like = start(redacting_model, {"MODELOPS_PREDICTION_LOG": str(tmp_path / "p.jsonl")})
    assert file_like.returncode == 1
    assert "error: MODELOPS_PREDICTION_LOG:" in file_like.stderr
    assert "names a file, but the prediction log is a folder" in file_like.stderr
    no_salt = start(redacting_model, {"MODELOPS_PREDICTION_LOG": str(tmp_path / "logs")})
    assert no_salt.returncode == 1
    assert "MODELOPS_LOG_HASH_SALT is not set" in no_salt.stderr
    assert not (tmp_path / "logs").exists()  # refused before anything was written
