"""The service image's Dockerfile: hadolint-clean, multi-stage, pinned base, non-root, model
from a build argument, health check, OCI labels, no compiler; .dockerignore lets through
exactly what it copies. (No Docker engine here: tests/e2e/test_serving_image.py runs the
image's start command natively.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\n")
    done = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "DL3007" in done.stdout and "DL3013" in done.stdout


def test_multi_stage_on_a_pinned_slim_base(text: str) -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", base.group(1))
    froms = [args for stage in stages(text) for word, args in stage if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_runtime_stage_is_non_root_with_health_check_and_labels(text: str) -> None:
    runtime = stages(text)[-1]
    words = [w for w, _ in runtime]
    users = [args for w, args in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    (health,) = [args for w, args in runtime if w == "HEALTHCHECK"]
    assert health.endswith('CMD ["python", "-m", "serving.healthcheck"]')
    assert "/health" in (ROOT / "serving" / "healthcheck.py").read_text()
    labels = " ".join(args for w, args in runtime if w == "LABEL")
    for label in (
        'org.opencontainers.image.revision="${GIT_COMMIT}"',
        'org.opencontainers.image.version="${MODEL_NAME}-${MODEL_VERSION}"',
        'io.modelops.model.version="${MODEL_VERSION}"',
        'io.modelops.model.name="${MODEL_NAME}"',
    ):
        assert label in labels
    copies = [args for w, args in runtime if w == "COPY"]
    assert "${MODEL_DIR} /app/model" in copies
    assert "--from=build /opt/venv /opt/venv" in copies
    assert any(w == "CMD" for w in words)


def test_no_compiler_anywhere_and_the_lock_file_as_constraints(text: str) -> None:
    for stage in stages(text):
        for word, args in stage:
            if word == "RUN":
                assert not re.search(r"apt-get|apk |gcc|g\+\+|build-essential|make ", args), args
    build_runs = " ".join(args for w, args in stages(text)[0] if w == "RUN")
    assert "--only-binary=:all:" in build_runs  # wheels only: nothing to compile
    assert "-c requirements.lock" in build_runs
    assert "['optional-dependencies']" in build_runs and "SERVE_EXTRAS" in build_runs
    assert "--no-deps ." in build_runs


def test_the_serve_extras_keep_the_pipeline_out_of_the_image() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    serve, sklearn = (
        {re.split(r"[<>=\[ ]", r)[0].lower() for r in extras[name]}
        for name in ("serve", "serve-sklearn")
    )
    assert not (serve | sklearn) & {"mlflow", "dvc", "matplotlib", "psycopg2-binary", "locust"}
    assert {"fastapi", "uvicorn", "onnxruntime", "numpy", "prometheus-client"} <= serve
    # the lean image: the fast path compiled at export needs none of these
    assert not serve & {"scikit-learn", "scipy", "pandas", "skops", "onnx"}
    assert {"scikit-learn", "skops"} <= sklearn
    lock = (ROOT / "requirements.lock").read_text().lower()
    for name in serve | sklearn:  # the lock file pins every package the image installs
        assert re.search(rf"^{re.escape(name)}==", lock, re.MULTILINE), name


def dockerignore_sends(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matches a path or a parent."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    sent = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.rstrip("/")
        hit = any(
            fnmatch(prefix, glob) or fnmatch(prefix, glob.replace("**/", "")) for prefix in prefixes
        )
        if hit:
            sent = negate
    return sent


def test_dockerignore_sends_only_what_the_image_needs(text: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = set()
    for word, args in instructions(text):
        if word == "COPY" and "--from" not in args:
            copied |= {p for p in shlex.split(args)[:-1] if "$" not in p}
    assert copied == {"pyproject.toml", "requirements.lock", "README.md", "src", "serving"}
    for path in [*copied, "src/modelops/reference.py", "serving/app.py", "build/model/MLmodel"]:
        assert dockerignore_sends(path, patterns), path
    left_out = [
        ".venv/bin/python",
        "mlflow.db",
        "mlartifacts/1/x",
        "data/raw/credit_data.csv",
        "tests/conftest.py",
        ".git/HEAD",
        "serving/__pycache__/app.cpython-311.pyc",
    ]
    for path in left_out:
        assert not dockerignore_sends(path, patterns), path
