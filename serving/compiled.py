"""The fast path compiled at export time, so the image can serve without sklearn.

`modelops export-model` calls `compile_export`: it loads the exported pipeline (sklearn),
builds the fast predictor, runs the cross-check against `predict_proba` on the probe rows
(predictor.build_predictor), and records the outcome in `<model>/fast_path/predictor.json`:
  - a match: the preprocessing blocks (fill values, scaling, one-hot lookups), the linear
    coefficients or `model.onnx` (the trees), and the check (largest gap, probe rows);
  - no match, or a pipeline the fast path cannot replay: `"kind": "sklearn"` and the reason,
    which makes the image install the sklearn extra (deploy/image.py, SERVE_EXTRAS).
`load_compiled` rebuilds the predictor from those files with numpy and onnxruntime only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from serving.model import ModelCard
from serving.predictor import (
    TOLERANCE,
    FastPredictor,
    _CategoricalBlock,
    _Linear,
    _NumericBlock,
    _OnnxTrees,
    _Preprocessor,
)

FOLDER = "fast_path"
MANIFEST = "predictor.json"
ONNX_FILE = "model.onnx"
FORMAT = 1


def _floats(values: Any) -> list[float] | None:
    return None if values is None else [float(v) for v in np.asarray(values).ravel()]


def save(predictor: FastPredictor, check: dict[str, Any], model_dir: Path) -> Path:
    """Write the compiled predictor and the cross-check under `model_dir`/fast_path."""
    folder = model_dir / FOLDER
    folder.mkdir(exist_ok=True)
    prep = predictor.prep
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "kind": predictor.kind,
        "check": check,
        "width": prep.width,
        "numeric_blocks": [
            {
                "offset": b.offset,
                "columns": b.columns,
                "fill": _floats(b.fill),
                "mean": _floats(b.mean),
                "scale": _floats(b.scale),
            }
            for b in prep.numeric_blocks
        ],
        "categorical_blocks": [
            {"columns": b.columns, "lookups": [list(m.items()) for m in b.lookups], "fill": b.fill}
            for b in prep.categorical_blocks
        ],
    }
    model = predictor.model
    if isinstance(model, _OnnxTrees):
        (folder / ONNX_FILE).write_bytes(model.onnx_model)
        manifest["onnx"] = ONNX_FILE
    else:
        manifest["linear"] = {
            "coef": _floats(model.coef),
            "intercept": _floats(model.intercept),
        }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return folder / MANIFEST


def save_fallback(reason: str, model_dir: Path) -> Path:
    """Record that this model is served by sklearn, and why."""
    folder = model_dir / FOLDER
    folder.mkdir(exist_ok=True)
    record = {"format": FORMAT, "kind": "sklearn", "reason": reason}
    (folder / MANIFEST).write_text(json.dumps(record, indent=1) + "\n")
    return folder / MANIFEST


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    """fast_path/predictor.json of an exported folder (None for a folder without one)."""
    path = Path(model_dir) / FOLDER / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, this service reads {FORMAT}")
    return manifest


def load_compiled(card: ModelCard) -> tuple[FastPredictor, str] | None:
    """The predictor compiled at export time, with the note of its check; None when the
    export recorded none or chose sklearn."""
    manifest = read_manifest(card.path)
    if manifest is None or manifest["kind"] == "sklearn":
        return None
    numeric = [
        _NumericBlock(
            b["offset"],
            b["columns"],
            np.asarray(b["fill"], dtype=np.float64),
            None if b["mean"] is None else np.asarray(b["mean"], dtype=np.float64),
            None if b["scale"] is None else np.asarray(b["scale"], dtype=np.float64),
        )
        for b in manifest["numeric_blocks"]
    ]
    categorical = [
        _CategoricalBlock(b["columns"], [dict(map(tuple, m)) for m in b["lookups"]], b["fill"])
        for b in manifest["categorical_blocks"]
    ]
    prep = _Preprocessor.from_blocks(numeric, categorical, manifest["width"])
    model: _OnnxTrees | _Linear
    if "onnx" in manifest:
        model = _OnnxTrees((card.path / FOLDER / manifest["onnx"]).read_bytes())
    else:
        linear = manifest["linear"]
        model = _Linear(np.asarray(linear["coef"])[None, :], linear["intercept"])
    check = manifest["check"]
    note = (
        f"{model.kind}: compiled at export, matched sklearn within {check['max_gap']:.1g} "
        f"on {check['probe_rows']} probe rows"
    )
    return FastPredictor(prep, model), note


def compile_export(model_dir: Path) -> str:
    """Compile and cross-check the exported model's fast path; returns a one-line note."""
    from serving.model import load_pipeline, read_card
    from serving.predictor import SklearnPredictor, Unsupported, probe_batch

    card = read_card(Path(model_dir))
    pipeline = load_pipeline(card)
    try:
        fast = FastPredictor.from_pipeline(pipeline, card)
    except Unsupported as why:
        save_fallback(f"fast path unsupported ({why})", card.path)
        return f"sklearn: the fast path cannot replay this pipeline ({why})"
    probe = probe_batch(card)
    reference = SklearnPredictor(pipeline, card).scores(probe)
    gap = float(np.max(np.abs(fast.scores(probe) - reference)))
    if not gap <= TOLERANCE:
        save_fallback(f"fast path differs by {gap:.3g} on probe rows", card.path)
        return f"sklearn: the fast path differs from sklearn by {gap:.3g} on probe rows"
    save(fast, {"max_gap": gap, "probe_rows": probe.rows, "tolerance": TOLERANCE}, card.path)
    # the saved form must score exactly as the one checked
    loaded = load_compiled(read_card(card.path))
    if loaded is None or not np.array_equal(loaded[0].scores(probe), fast.scores(probe)):
        raise RuntimeError(f"{card.path / FOLDER}: the saved fast path scores differently")
    return f"{fast.kind}: matches sklearn within {gap:.1g} on {probe.rows} probe rows"
