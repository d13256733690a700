"""dvc.yaml lists, for every stage, exactly the project modules its command runs.

The modules are derived from the code: the imports inside the CLI command the stage calls,
then every `modelops` module those import, transitively (function-level imports included,
since the pipeline imports lazily). A change to any of them must rerun the stage, and a
module the stage no longer uses must not rerun it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CLI = SRC / "modelops" / "cli"


def module_file(module: str) -> Path | None:
    """The file of a `modelops...` module (package __init__ for packages), None if none."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(tree: ast.AST) -> set[str]:
    """`modelops...` modules a syntax tree imports (from-imports of names count the module,
    and the name itself when it is a submodule)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modelops"):
            module = str(node.module)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names if module_file(f"{module}.{a.name}")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("modelops")}
    return {m for m in found if module_file(m) is not None}


def closure(modules: set[str]) -> set[Path]:
    """Files of `modules` and of every module they import, transitively; parent packages'
    __init__ files run on import too."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name in seen or module_file(name) is None:
                continue
            seen.add(name)
            path = module_file(name)
            assert path is not None
            todo.extend(imported_modules(ast.parse(path.read_text())))
    return {module_file(m) for m in seen if module_file(m) is not None}  # type: ignore[misc]


def command_function(command: str) -> ast.FunctionDef:
    """The function behind `modelops <command>` in the CLI modules."""
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if not (isinstance(decorator, ast.Call) and "command" in ast.unparse(decorator)):
                    continue
                named = [a.value for a in decorator.args if isinstance(a, ast.Constant)]
                if (named[0] if named else node.name.replace("_", "-")) == command:
                    return node
    raise AssertionError(f"no CLI function for `modelops {command}`")


def stage_modules(cmd: str) -> set[str]:
    """Project source files (relative, sorted) the stage's command runs, beyond the CLI."""
    command = cmd.split()[1]
    files = closure(imported_modules(command_function(command)))
    return {str(f.relative_to(ROOT)) for f in files if CLI not in f.parents}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_the_modules_it_runs(stage: str) -> None:
    spec = STAGES[stage]
    listed = {d for d in spec["deps"] if str(d).startswith("src/")}
    expected = stage_modules(" ".join(spec["cmd"].split()))
    missing, stale = sorted(expected - listed), sorted(listed - expected)
    assert not missing and not stale, (
        f"dvc.yaml stage {stage}: add deps {missing}, remove {stale} (the modules its "
        "command imports, transitively)"
    )


def test_the_derivation_sees_lazy_imports() -> None:
    """The train command imports its stage module inside the function: it must be found."""
    files = stage_modules("modelops train")
    assert "src/modelops/pipeline/train.py" in files
    assert "src/modelops/registry/reference.py" in files
