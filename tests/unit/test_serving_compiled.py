"""The fast path compiled at export (serving/compiled.py): saved, reloaded without sklearn,
scoring exactly as the predictor that was cross-checked; a model it cannot replay is recorded
as served by sklearn, and the image plan then asks for the sklearn extra."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.config import Params
from modelops.deploy.image import serve_extras
from serving.compiled import FOLDER, MANIFEST, compile_export, load_compiled, save
from serving.model import load_pipeline, read_card
from serving.predictor import TOLERANCE, FastPredictor, Unsupported, probe_batch


@pytest.fixture
def exported(trained_model: dict[str, Any], tmp_path: Path) -> Path:
    return Path(shutil.copytree(Path(trained_model["model_dir"]), tmp_path / "model"))


def test_the_compiled_fast_path_scores_as_the_checked_one(exported: Path) -> None:
    note = compile_export(exported)
    assert note.startswith("onnx: matches sklearn within")
    manifest = json.loads((exported / FOLDER / MANIFEST).read_text())
    assert manifest["kind"] == "onnx" and manifest["check"]["max_gap"] <= TOLERANCE
    assert manifest["check"]["probe_rows"] > 50
    card = read_card(exported)
    loaded = load_compiled(card)
    assert loaded is not None
    predictor, loaded_note = loaded
    assert "compiled at export" in loaded_note
    probe = probe_batch(card)
    fresh = FastPredictor.from_pipeline(load_pipeline(card), card)
    np.testing.assert_array_equal(predictor.scores(probe), fresh.scores(probe))
    assert serve_extras(exported) == "serve"


def test_a_linear_model_round_trips(
    exported: Path, params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from modelops.pipeline.train import fit

    lr_params = params.model_copy(deep=True)
    lr_params.train.model = "logistic_regression"
    lr, *_ = fit(lr_params, split_frames[0])
    card = read_card(exported)
    fast = FastPredictor.from_pipeline(lr, card)
    save(fast, {"max_gap": 0.0, "probe_rows": 1, "tolerance": TOLERANCE}, exported)
    loaded = load_compiled(card)
    assert loaded is not None and loaded[0].kind == "numpy"
    probe = probe_batch(card)
    np.testing.assert_array_equal(loaded[0].scores(probe), fast.scores(probe))


def test_a_model_the_fast_path_cannot_replay_is_recorded_as_sklearn(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*_: Any) -> FastPredictor:
        raise Unsupported("estimator RandomForestClassifier")

    monkeypatch.setattr(FastPredictor, "from_pipeline", unsupported)
    assert compile_export(exported).startswith("sklearn: the fast path cannot replay")
    manifest = json.loads((exported / FOLDER / MANIFEST).read_text())
    assert manifest == {
        "format": 1,
        "kind": "sklearn",
        "reason": "fast path unsupported (estimator RandomForestClassifier)",
    }
    assert load_compiled(read_card(exported)) is None
    assert serve_extras(exported) == "serve,serve-sklearn"
    (exported / FOLDER / MANIFEST).unlink()  # an export from before: sklearn, to be safe
    assert serve_extras(exported) == "serve,serve-sklearn"


_LEAN = """\
import sys
for name in ("sklearn", "pandas", "scipy", "skops", "onnx", "mlflow"):
    sys.modules[name] = None  # importing one of them fails: the lean image has none
from pathlib import Path
import serving.app, serving.launcher
from serving.compiled import load_compiled
from serving.model import read_card
from serving.predictor import probe_batch
card = read_card(Path(sys.argv[1]))
predictor, note = load_compiled(card)
print(predictor.kind, predictor.scores(probe_batch(card)).shape)
"""


def test_the_compiled_model_serves_without_sklearn_pandas_or_scipy(exported: Path) -> None:
    compile_export(exported)
    done = subprocess.run(
        [sys.executable, "-c", _LEAN, str(exported)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("onnx (")
