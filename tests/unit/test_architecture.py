"""The rules of docs/architecture.md, checked on the code.

- Wings: src/modelops has pipeline/, registry/, monitor/, deploy/, ci/, cli/, bench/ and only
  config.py and errors.py beside them.
- Only the local rehearsal (deploy/local/) and the deploy CLI import deploy/local; the
  service never imports deploy/.
- MLflow's process-wide tracking URI is set in one place (training's run logging).
- Every markdown link stays inside the repository and resolves.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "modelops"
WINGS = {"pipeline", "registry", "monitor", "deploy", "ci", "cli", "bench"}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def test_the_package_is_made_of_wings() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert folders == WINGS
    assert modules == {"__init__.py", "config.py", "errors.py"}


# Which wings each wing may import (docs/architecture.md, "The wings"); config and errors
# are open to all. cli and bench sit on top and may import anything.
MAY_IMPORT = {
    "pipeline": {"registry"},
    "registry": set(),
    "monitor": {"pipeline", "registry"},
    "deploy": {"registry", "monitor"},
    "ci": set(),
}


@pytest.mark.parametrize("wing", sorted(MAY_IMPORT))
def test_wings_import_only_what_the_map_allows(wing: str) -> None:
    allowed = MAY_IMPORT[wing] | {wing, "config", "errors"}
    found = {
        f"{path.relative_to(ROOT)} imports modelops.{module.split('.')[1]}"
        for path in python_files(PACKAGE / wing)
        for module in imports(path)
        if module.startswith("modelops.") and module.split(".")[1] not in allowed
    }
    assert not found, sorted(found)


def test_the_service_imports_only_the_registry_wing() -> None:
    """serving/ runs in the image; the load test (locustfile, dev only) may read params."""
    found = {
        f"{path.name}: {module}"
        for path in python_files(ROOT / "serving")
        if path.name != "locustfile.py"
        for module in imports(path)
        if module.startswith("modelops.") and module.split(".")[1] not in {"registry", "errors"}
    }
    assert not found, sorted(found)


def test_only_the_rehearsal_and_its_cli_import_deploy_local() -> None:
    allowed = {PACKAGE / "cli" / "deploy.py", PACKAGE / "bench" / "canary.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files(PACKAGE, ROOT / "serving")
        if (PACKAGE / "deploy" / "local") not in path.parents
        and (PACKAGE / "bench") not in path.parents  # benchmarks run it (a local registry)
        and path not in allowed
        and any(m.startswith("modelops.deploy.local") for m in imports(path))
    ]
    assert not offenders, f"production code imports the local rehearsal: {offenders}"


def test_the_service_does_not_import_deploys() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files(ROOT / "serving")
        if any(m.startswith("modelops.deploy") for m in imports(path))
    ]
    assert not offenders


def test_one_place_sets_the_tracking_uri() -> None:
    found = subprocess.run(
        ["grep", "-rn", "--include=*.py", "set_tracking_uri(", "src", "serving"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert len(found) == 1 and found[0].startswith("src/modelops/registry/tracking.py:"), found


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "doc",
    sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.md")
        if not {".venv", ".git", "node_modules", ".pytest_cache"} & set(p.relative_to(ROOT).parts)
    ),
)
def test_links_stay_inside_the_repository(doc: str) -> None:
    path = ROOT / doc
    for target in LINK.findall(path.read_text()):
        assert not re.match(r"^[a-z]+:", target), f"{doc}: link leaves the repository: {target}"
        file_part = target.split("#", 1)[0]
        if not file_part:
            continue
        resolved = (path.parent / file_part).resolve()
        assert ROOT in resolved.parents or resolved == ROOT, f"{doc}: {target} is outside"
        assert resolved.exists(), f"{doc}: {target} does not exist"


def test_readme_links_the_architecture() -> None:
    assert "](docs/architecture.md)" in (ROOT / "README.md").read_text()
