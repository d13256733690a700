"""pyproject.toml declares what the code imports, and nothing it does not use.

The imports come from the code (every `import` in src/modelops and serving/, function-level
ones included); packages map to distributions through their installed metadata. A package
used without being imported (a server's optional speedups, a database driver, a CLI run as a
subprocess) is listed below with the reason.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"modelops", "serving", "tests"}
USED_WITHOUT_IMPORT = {
    "dvc": "the pipeline's engine, run as the `dvc` command (Makefile, workflows, tests)",
    "uvloop": "uvicorn's event loop (--loop uvloop) in the service",
    "httptools": "uvicorn's HTTP parser (--http httptools) in the service",
    "psycopg2-binary": "the driver of MLflow's PostgreSQL store (postgresql:// tracking URIs)",
}


def normalize(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


DEV_ONLY_FILES = {"locustfile.py"}  # the load test (dev extra); .dockerignore keeps it out


def imports_of(paths: list[Path]) -> set[str]:
    """Top-level names of every module imported in `paths`."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return modules


def distributions(modules: set[str], declared: list[str]) -> set[str]:
    """Distributions of the third-party ones among `modules` (a package several
    distributions provide, like mlflow, counts as the declared one)."""
    third_party = {m.split(".")[0] for m in modules} - FIRST_PARTY - set(sys.stdlib_module_names)
    owners = packages_distributions()
    missing = sorted(m for m in third_party if m not in owners)
    assert not missing, f"imported but not installed: {missing}"
    found = set()
    for module in third_party:
        candidates = [normalize(d) for d in owners[module]]
        found.add(next((d for d in candidates if d in declared), candidates[0]))
    return found


def imported_distributions(folder: Path, declared: list[str]) -> set[str]:
    """Distributions imported anywhere under `folder` (dev-only files aside)."""
    paths = [p for p in folder.rglob("*.py") if p.name not in DEV_ONLY_FILES]
    return distributions(imports_of(paths), declared)


def module_path(module: str) -> Path | None:
    for base in (ROOT / "src", ROOT):
        stem = base.joinpath(*module.split("."))
        for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def service_modules() -> list[Path]:
    """The files the service runs: `python -m serving`, its health check and the app uvicorn
    loads by name (serving.launcher.APP), and every first-party module they import."""
    from serving.launcher import APP

    todo, seen = ["serving.__main__", "serving.healthcheck", APP.split(":")[0]], set()
    while todo:
        module = todo.pop()
        path = module_path(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        todo += [m for m in imports_of([path]) if m.split(".")[0] in FIRST_PARTY]
    return sorted(p for p in map(module_path, seen) if p is not None)


@pytest.fixture(scope="module")
def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "main": [normalize(r) for r in data["dependencies"]],
        "serve": [normalize(r) for r in data["optional-dependencies"]["serve"]],
        "serve-sklearn": [normalize(r) for r in data["optional-dependencies"]["serve-sklearn"]],
        "dev": [normalize(r) for r in data["optional-dependencies"]["dev"]],
    }


def test_every_import_is_declared(project: dict[str, list[str]]) -> None:
    main = project["main"]
    used = imported_distributions(ROOT / "src", main) | imported_distributions(
        ROOT / "serving", main
    )
    undeclared = sorted(used - set(project["main"]))
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_every_declared_dependency_is_used(project: dict[str, list[str]]) -> None:
    main = project["main"]
    used = imported_distributions(ROOT / "src", main) | imported_distributions(
        ROOT / "serving", main
    )
    unused = sorted(set(project["main"]) - used - set(USED_WITHOUT_IMPORT))
    assert not unused, f"declared but never imported (remove, or say why): {unused}"


def test_the_serve_extras_cover_the_service(project: dict[str, list[str]]) -> None:
    """The image installs the serve extras only: everything the service's modules import must
    be in `serve` + `serve-sklearn` (mlflow is imported lazily, only for registry URIs, which
    the image never gets)."""
    files = service_modules()
    assert ROOT / "serving" / "app.py" in files
    imported = {m for m in imports_of(files) if m.split(".")[0] != "mlflow"}
    extras = project["serve"] + project["serve-sklearn"]
    missing = sorted(distributions(imported, extras) - set(extras))
    assert not missing, f"serving/ imports these, the serve extras lack them: {missing}"


def module_level_imports(paths: list[Path]) -> set[str]:
    """Imports a module runs when it is imported (not those inside functions or under
    `if TYPE_CHECKING`)."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return modules


def test_the_lean_serve_extra_imports_the_service(project: dict[str, list[str]]) -> None:
    """The lean image (`serve` only) must import every service module: sklearn, pandas and
    scipy are imported inside the functions of the sklearn path only."""
    used = distributions(module_level_imports(service_modules()), project["serve"])
    missing = sorted(used - set(project["serve"]))
    assert not missing, f"imported at module level, not in the serve extra: {missing}"


def test_the_load_test_is_a_dev_dependency(project: dict[str, list[str]]) -> None:
    used = distributions(imports_of([ROOT / "serving" / "locustfile.py"]), project["dev"])
    assert "locust" in used and "locust" in project["dev"]
