"""Every `dvc exp run -S ...` command the README shows applies to params.yaml and gives valid experiments.

DVC applies `-S` with Hydra's override grammar: a key an experiment's dict does not hold yet
needs `++`, and a typo in a key path fails only when the user runs the command. This test runs
the README's overrides through DVC's own code on a copy of params.yaml, then builds the
configuration of every experiment in `run`, as the train stage would.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

from pipeline.config.experiment import resolve_experiment
from pipeline.config.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    commands = re.findall(r"dvc exp run (-S [^`|\n]*)", text)
    # `make repro-all`'s comment abbreviates the list of all experiments with "..."
    return [command.strip() for command in commands if "..." not in command]


def overrides(command: str) -> list[str]:
    words = shlex.split(command)
    return [value for flag, value in zip(words, words[1:]) if flag == "-S"]


def test_readme_shows_override_commands():
    assert len(readme_commands()) >= 5, "the README's `dvc exp run -S` commands were not found"


@pytest.mark.parametrize("command", readme_commands())
def test_readme_override_applies_to_params(command, tmp_path):
    params_file = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params_file)
    apply_overrides(str(params_file), overrides(command))  # raises on a key path DVC cannot set
    params = load_params(params_file)  # raises on a value of the wrong type or out of range
    for name in params.run:
        resolve_experiment(params, name)  # raises on unknown keys or protocols
