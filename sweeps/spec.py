"""A sweep's declaration and its checked values from params.yaml `sweeps.<name>`.

A script declares a `Sweep` (its keys under `sweeps.<name>`, how a trial's values enter the base
experiment's configuration, its figure) and calls sweeps.runner.main(SWEEP).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import optuna

from models.registry import hyperparameters
from pipeline.config.experiment import Experiment, needs_fit, read_fit, resolve_experiment
from pipeline.config.params import Params
from pipeline.core.errors import ConfigError
from pipeline.core.paths import ASYMMETRY_FIT

OPTIONAL = ("pruner", "val_fraction")  # sweep keys with defaults: none, train.val_fraction
# none: every trial trains all its epochs (complete figures); halving: successive halving (a trial
# goes on to the next rung of epochs, 1, 3, 9, ..., only while it is among the best third there;
# on a grid in synchronous rounds, sweeps/halving.py; on a search Optuna's asynchronous
# SuccessiveHalvingPruner); median: stop a trial worse than the median of the others at the same
# epoch, from epoch 2 on.
PRUNERS = {"none": optuna.pruners.NopPruner,
           "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
           "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)}


def optuna_pruner(sweep: Sweep, spec: dict) -> optuna.pruners.BasePruner:
    """The study's Optuna pruner: none for a grid with halving (its rounds do the pruning)."""
    if sweep.grid and spec["pruner"] == "halving":
        return optuna.pruners.NopPruner()
    return PRUNERS[spec["pruner"]]()


@dataclass(frozen=True)
class Sweep:
    """One study. `grid` keys hold lists (every combination is trained once, GridSampler);
    `ranges` keys hold [lo, hi] (TPE draws `trials` points, log scale). Optuna names a value
    prefix + key; `config(values)` turns {key: value} into config entries of the experiment."""

    name: str
    plot: Callable  # (results table, study folder, sweep) -> figure path
    grid: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    prefix: str = ""
    config: Callable[[dict], dict] = dict

    def keys(self) -> set[str]:
        return {"experiment", "epochs", *OPTIONAL, *self.grid, *self.ranges, *(["trials"] if self.ranges else [])}

    def param(self, key: str) -> str:
        return self.prefix + key


def read_spec(sweep: Sweep, params: Params) -> dict:
    """params.yaml sweeps.<name>, checked: {"experiment", "epochs", "pruner", "val_fraction",
    "grid": {key: [values]}, "ranges": {key: (lo, hi)}, "trials"}."""
    where = f"params.yaml sweeps.{sweep.name}"
    raw = params.sweeps.get(sweep.name)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: missing; add it (keys: {', '.join(sorted(sweep.keys()))})")
    if unknown := set(raw) - sweep.keys():
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(sweep.keys()))}")
    if missing := sweep.keys() - set(OPTIONAL) - set(raw):
        raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    spec = {"experiment": raw["experiment"], "pruner": raw.get("pruner", "none"), "val_fraction": raw.get("val_fraction"),
            "grid": {}, "ranges": {}}
    if spec["val_fraction"] is not None and not (_number(spec["val_fraction"]) and 0 < spec["val_fraction"] < 1):
        raise ConfigError(f"{where}.val_fraction: need a number between 0 and 1, got {spec['val_fraction']!r}")
    for key in ("epochs", *(["trials"] if sweep.ranges else [])):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise ConfigError(f"{where}.{key}: need a whole number >= 1, got {raw[key]!r}")
        spec[key] = raw[key]
    if spec["pruner"] not in PRUNERS:
        raise ConfigError(f"{where}.pruner: unknown pruner {spec['pruner']!r}; use {' or '.join(PRUNERS)}")
    for key in sweep.grid:
        values = raw[key]
        if not isinstance(values, list) or not values or not all(_number(v) for v in values):
            raise ConfigError(f"{where}.{key}: need a non-empty list of numbers, got {values!r}")
        spec["grid"][key] = list(dict.fromkeys(float(v) for v in values))
    for key in sweep.ranges:
        pair = raw[key]
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair) and 0 < pair[0] < pair[1]):
            raise ConfigError(f"{where}.{key}: need [lo, hi] with 0 < lo < hi, got {pair!r}")
        spec["ranges"][key] = (float(pair[0]), float(pair[1]))
    return spec


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)



def trial_experiment(params: Params, spec: dict, sweep: Sweep, values: dict | None = None, name: str | None = None) -> Experiment:
    """The sweep's base experiment with the sweep's epochs (and val_fraction) and a trial's
    `values`, resolved and checked like any experiment; `name` replaces its name."""
    sample = {k: v[0] for k, v in spec["grid"].items()} | {k: lo for k, (lo, _) in spec["ranges"].items()}
    overrides = {"epochs": spec["epochs"], **sweep.config(values if values is not None else sample)}
    if spec["val_fraction"] is not None:
        overrides["val_fraction"] = spec["val_fraction"]
    base = params.experiments.get(spec["experiment"], {})
    model = base.get("model")
    known = set(params.train.model_dump()) | set(_hyperparameters(model))
    if unknown := set(sweep.config(sample)) - known:
        raise ConfigError(f"params.yaml sweeps.{sweep.name}.experiment: {spec['experiment']} (model {model}) "
                          f"has no {', '.join(sorted(unknown))}; choose an experiment whose model takes it")
    fit = read_fit(ASYMMETRY_FIT) if needs_fit(params, spec["experiment"]) else None
    exp = resolve_experiment(params, spec["experiment"], overrides=overrides, fit=fit)
    if exp.val_fraction <= 0:
        raise ConfigError(f"params.yaml sweeps.{sweep.name}.val_fraction: sweeps rank trials by validation MAE; set it above 0")
    return exp.model_copy(update={"name": name}) if name else exp


def _hyperparameters(model) -> dict:
    try:
        return hyperparameters(model).model_fields
    except ConfigError:
        return {}
