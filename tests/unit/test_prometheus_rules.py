"""Prometheus rules: promtool checks them, runs their unit tests, and agrees with `modelops drift`.

The promtool unit tests in infra/local/prometheus/tests use small synthetic series; here the
same rules are also fed the bin counts of real credit data (drifted and not), and the PSI the
recording rules compute is compared with the PSI of src/modelops/drift.py, bin for bin.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.bench.drift import inject_drift
from modelops.config import Params
from modelops.monitor.drift import SCORE, bin_counts, psi, reference_shares

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROM_DIR = Path(__file__).resolve().parents[2] / "infra" / "local" / "prometheus"
RULES = sorted((PROM_DIR / "rules").glob("*.yml"))
TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_rules_and_config_pass_promtool_check() -> None:
    assert len(RULES) == 2
    checked = promtool("check", "rules", "--lint=all", "--lint-fatal", *RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", PROM_DIR / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "2 rule files found" in config.stdout


def test_promtool_unit_tests_pass() -> None:
    assert TESTS
    result = promtool("test", "rules", *TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _rules() -> dict[str, dict[str, Any]]:
    out = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[rule.get("record") or rule["alert"]] = rule
    return out


def _run_tests_against(
    tmp_path: Path, recording: str, alerts: str
) -> subprocess.CompletedProcess[str]:
    """Run the committed promtool tests against edited copies of the rule files."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / "modelops-recording.yml").write_text(recording)
    (tmp_path / "rules" / "modelops-alerts.yml").write_text(alerts)
    for test in TESTS:
        shutil.copy(test, tmp_path / "tests" / test.name)
    return promtool("test", "rules", *(tmp_path / "tests" / t.name for t in TESTS))


@pytest.mark.parametrize(
    ("file", "old", "new", "symptom"),
    [
        # Without the zero-fill, bins the canary never filled vanish and PSI is understated.
        (
            "recording",
            "(modelops:feature_reference_proportion:max * 0)",
            "(modelops:feature_reference_proportion:max * 0 < -1)",
            "modelops:feature_",
        ),
        (
            "alerts",
            "modelops:feature_psi:5m > 0.25",
            "modelops:feature_psi:5m > 25",
            "ModelopsFeatureDrift",
        ),
        ("alerts", "ratio_rate5m > 0.01", "ratio_rate5m > 0.05", "ModelopsHighErrorRate"),
        ("alerts", ">= 500", ">= 100", "ModelopsFeatureDrift"),
    ],
)
def test_promtool_tests_catch_broken_rules(
    tmp_path: Path, file: str, old: str, new: str, symptom: str
) -> None:
    """The unit tests are not vacuous: each of these rule breakages makes them fail."""
    recording = (PROM_DIR / "rules" / "modelops-recording.yml").read_text()
    alerts = (PROM_DIR / "rules" / "modelops-alerts.yml").read_text()
    if file == "recording":
        assert old in recording
        recording = recording.replace(old, new)
    else:
        assert old in alerts
        alerts = alerts.replace(old, new)
    result = _run_tests_against(tmp_path, recording, alerts)
    assert result.returncode != 0
    assert symptom in result.stdout + result.stderr


def test_thresholds_equal_params(params: Params) -> None:
    """The alert levels, the row minimum and the PSI epsilon are the ones in params.yaml."""
    rules = _rules()
    drift = params.drift
    for name, level in [
        ("ModelopsFeatureDrift", drift.psi_alert),
        ("ModelopsFeatureDriftWarning", drift.psi_warning),
        ("ModelopsScoreDrift", drift.psi_alert),
        ("ModelopsScoreDriftWarning", drift.psi_warning),
    ]:
        expr = rules[name]["expr"]
        assert float(re.search(r"_psi:5m > ([0-9.]+)", expr).group(1)) == level, name
        assert float(re.search(r">= ([0-9]+)", expr).group(1)) == drift.min_rows, name
    for name in ("modelops:feature_psi:5m", "modelops:score_psi:5m"):
        floors = re.findall(r"clamp_min\([^,]+, ([0-9.e-]+)\)", rules[name]["expr"])
        assert len(floors) == 4
        assert {float(f) for f in floors} == {drift.epsilon}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _track_series(
    track: str,
    rows: pd.DataFrame,
    scores: np.ndarray,
    reference: dict[str, Any],
    params: Params,
    skip_empty: bool,
) -> tuple[list[dict[str, str]], dict[str, float]]:
    """Counter and gauge series of one track (rows per minute = the frame), expected PSIs."""
    base = {"job": "modelops", "env": "test", "instance": f"{track}:8000", "track": track}
    columns = {f: (rows[f], reference["features"][f]) for f in params.data.features}
    columns[SCORE] = (pd.Series(scores), reference["score"])
    series, expected = [], {}
    for feature, (values, spec) in columns.items():
        labels, counts = bin_counts(values, spec, feature)
        shares = reference_shares(spec, labels)
        expected[feature] = psi(counts / counts.sum(), shares, params.drift.epsilon)
        for label, count, share in zip(labels, counts, shares, strict=True):
            tags = {**base, "feature": feature, "bin": label}
            series.append(_series("modelops_feature_reference_proportion", tags, f"{share}x10"))
            if count or not skip_empty:
                series.append(_series("modelops_feature_bin_total", tags, f"0+{count}x10"))
    return series, expected


def test_recorded_psi_equals_python_psi_on_real_credit_data(
    tmp_path: Path,
    params: Params,
    trained_model: dict[str, Any],
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Stable gets the held-out test rows, canary the same rows with income and amount up 50%
    and half the home owners turned renters. Prometheus' PSI matches drift.py to 1e-9 for every
    feature and the score; the drift alerts fire for exactly the shifted features."""
    import mlflow.sklearn

    from modelops.pipeline.evaluate import score

    reference = json.loads((trained_model["model_dir"] / "extra_files/reference.json").read_text())
    model = mlflow.sklearn.load_model(str(trained_model["model_dir"]))
    stable_rows = split_frames[1]
    canary_rows = inject_drift(stable_rows, seed=3)
    stable, stable_psi = _track_series(
        "stable", stable_rows, score(model, stable_rows, params), reference, params, False
    )
    canary, canary_psi = _track_series(
        "canary", canary_rows, score(model, canary_rows, params), reference, params, True
    )

    checks = []
    for track, expected in (("stable", stable_psi), ("canary", canary_psi)):
        for feature, value in expected.items():
            selector = (
                f'modelops:score_psi:5m{{track="{track}"}}'
                if feature == SCORE
                else f'modelops:feature_psi:5m{{track="{track}",feature="{feature}"}}'
            )
            labels = {"job": "modelops", "env": "test", "track": track}
            if feature != SCORE:
                labels["feature"] = feature
            inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
            checks.append(
                {
                    "expr": f"abs({selector} - {value!r}) < bool 1e-9",
                    "eval_time": "10m",
                    "exp_samples": [{"labels": f"{{{inner}}}", "value": 1}],
                }
            )
    drifted = sorted(f for f, v in canary_psi.items() if f != SCORE and v > params.drift.psi_alert)
    assert drifted == ["Amount", "Home", "Income"]
    assert max(stable_psi.values()) < params.drift.psi_warning
    description = (
        "Run `modelops drift` on the prediction logs for the full report; "
        "the monitor workflow retrains on drift."
    )
    alerts = [
        {
            "alertname": "ModelopsFeatureDrift",
            "eval_time": "10m",
            "exp_alerts": [
                {
                    "exp_labels": {
                        "severity": "critical",
                        "job": "modelops",
                        "env": "test",
                        "track": "canary",
                        "feature": feature,
                    },
                    "exp_annotations": {
                        "summary": f"Feature {feature} drifted on canary: "
                        f"PSI {canary_psi[feature]:.3f} (> 0.25)",
                        "description": description,
                    },
                }
                for feature in drifted
            ],
        }
    ]
    test_file = tmp_path / "real-data-test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(p) for p in RULES],
                "evaluation_interval": "1m",
                "group_eval_order": ["modelops-traffic", "modelops-drift", "modelops-alerts"],
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": stable + canary,
                        "promql_expr_test": checks,
                        "alert_rule_test": alerts,
                    }
                ],
            },
            sort_keys=False,
        )
    )
    result = promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    print(
        "PSI on injected drift (Prometheus = drift.py): "
        + ", ".join(f"{f} {canary_psi[f]:.3f}" for f in [*drifted, SCORE])
    )
