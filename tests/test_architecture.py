"""The layout's promises, checked on the code itself:

- every DVC stage depends on every source file it runs (its entry module's transitive imports,
  lazy ones included), so `dvc repro` can never serve a result computed by code that has since
  changed; and on nothing it does not run;
- no import cycle anywhere; the layer contracts of pyproject.toml hold (`lint-imports`).
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest
import yaml

from tests.support import ROOT

PACKAGES = ("pipeline", "models", "sweeps", "benchmarks")


def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def module_file(module: str) -> Path:
    """The source file of a project module (a package is its __init__.py)."""
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def runs_code(path: Path) -> bool:
    """False for a package __init__.py that holds only its docstring (nothing it could change)."""
    if path.name != "__init__.py":
        return True
    body = ast.parse(path.read_text()).body
    return not (len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body))


def stages() -> dict[str, dict]:
    """Every stage of dvc.yaml (a foreach stage once, with ${item} left in its paths)."""
    found = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        found[name] = stage.get("do", stage)
    return found


def entry_module(cmd: str) -> str:
    match = re.match(r"python -m ([\w.]+)", cmd)
    assert match, f"stage command {cmd!r} does not run a module (python -m ...)"
    return match.group(1)


def code_files(module: str, g: grimp.ImportGraph) -> set[Path]:
    """The files a stage runs: its entry module and everything it imports, directly or not."""
    modules = {module} | g.find_upstream_modules(module)
    files = {module_file(m).relative_to(ROOT) for m in modules if m.split(".")[0] in PACKAGES}
    return {f for f in files if runs_code(ROOT / f)}


def uncovered(files: set[Path], deps: list[str]) -> set[Path]:
    """The files no dep path covers (a dep is a file or a folder)."""
    paths = [Path(d) for d in deps]
    return {f for f in files if not any(f == p or p in f.parents for p in paths)}


def dep_paths(stage: dict) -> list[str]:
    return [next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])]


def code_deps(stage: dict) -> list[str]:
    return [d for d in dep_paths(stage) if d.split("/")[0] in PACKAGES]


@pytest.fixture(scope="module")
def import_graph():
    return graph()


@pytest.mark.parametrize("name", list(stages()))
def test_stage_depends_on_every_file_it_runs(name, import_graph):
    stage = stages()[name]
    files = code_files(entry_module(stage["cmd"]), import_graph)
    missing = uncovered(files, dep_paths(stage))
    assert not missing, f"dvc.yaml stage {name} runs {sorted(map(str, missing))} but does not depend on them"


@pytest.mark.parametrize("name", list(stages()))
def test_deleting_any_code_dep_line_is_caught(name, import_graph):
    """The check above fails whatever code dep line of the stage is deleted (so none is
    decoration: each covers a file the stage runs that no other line covers)."""
    stage = stages()[name]
    files = code_files(entry_module(stage["cmd"]), import_graph)
    for dep in code_deps(stage):
        rest = [d for d in dep_paths(stage) if d != dep]
        assert uncovered(files, rest), f"dvc.yaml stage {name}: deleting dep {dep} goes unnoticed (it covers no file the stage runs alone)"


def test_no_import_cycle_anywhere(import_graph):
    edges = nx.DiGraph()
    for module in import_graph.modules:
        for imported in import_graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_commands_are_thin_and_import_no_other_command(import_graph):
    commands = {f"pipeline.{p.stem}" for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py"}
    for command in commands:
        others = import_graph.find_upstream_modules(command) & commands
        assert not others, f"{command} imports the command(s) {sorted(others)}; move what they share into the library"
        assert len(module_file(command).read_text().splitlines()) <= 80, f"{command} is no thin entry point"
    for module in import_graph.modules:
        if module not in commands:
            assert not import_graph.find_modules_directly_imported_by(module) & commands, f"library module {module} imports a command"


def test_layer_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
