"""Reading params.yaml and building one experiment's full configuration from it."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

import models

from pipeline.errors import ConfigError
from pipeline.protocols import protocol_config
from pipeline.paths import PARAMS


def load_params(path: Path = PARAMS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; run from the repository root")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return params


def section(params: dict, name: str) -> dict:
    if name not in params or not isinstance(params[name], dict):
        raise ConfigError(f"params.yaml: section '{name}' missing; restore it from git (git checkout params.yaml)")
    return params[name]


def experiment_config(params: dict, name: str) -> dict:
    """`train` defaults overlaid with `experiments.<name>`; unknown keys are errors (typos)."""
    experiments = section(params, "experiments")
    if name not in experiments:
        raise ConfigError(f"params.yaml: no experiment '{name}' under 'experiments' (known: {', '.join(experiments)})")
    overrides = experiments[name] or {}
    if not isinstance(overrides, dict) or "model" not in overrides:
        raise ConfigError(f"params.yaml experiments.{name}: 'model' is required (one of {', '.join(models.available())})")
    config = copy.deepcopy(section(params, "train"))
    config["model"] = overrides["model"]
    config.update(models.model_defaults(overrides["model"]))
    unknown = set(overrides) - set(config)
    if unknown:
        raise ConfigError(f"params.yaml experiments.{name}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(config))}")
    config.update(copy.deepcopy(overrides))
    config["name"] = name
    config["protocol"] = protocol_config(params, config.get("protocol"))
    config["crop"] = copy.deepcopy(section(params, "crop"))  # so a checkpoint can crop new data itself
    return config
