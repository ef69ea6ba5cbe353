"""One experiment's whole configuration, resolved once into a frozen, typed object.

    exp = resolve_experiment(params, "dadl")              # params: pipeline.config.params.Params
    exp = resolve_experiment(params, "dadl_asym", fit=...)  # sigma: asymmetry -> the fitted numbers
    exp.epochs, exp.input_size                             # (width, height)
    exp.protocol.train, exp.protocol.test                  # resolved from params.yaml protocols
    exp.hparams.alpha                                      # the model's own hyperparameters
    build_model(exp.model, exp.hparams)

params.yaml `train` gives every experiment its schedule; `experiments.<name>` overrides any of
those keys and sets the model's hyperparameters, whose types and defaults are the model
constructor's (models.registry). Unknown keys, wrong types and impossible combinations (an
input size the model cannot take) are refused here with one line naming the key. A checkpoint
carries `exp.model_dump(mode="json")`; `Experiment.model_validate` reads it back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SerializeAsAny, ValidationError, model_validator

from models.registry import hyperparameters, model_class
from pipeline.config.params import Crop, Params, Protocol, Schedule, validated
from pipeline.core.errors import ConfigError, DataError

FROM_FIT = "asymmetry"  # `sigma: asymmetry`: the per-angle sigmas fitted by the asymmetry stage


class Experiment(Schedule):
    name: str
    model: str
    hparams: SerializeAsAny[BaseModel]  # models.registry.hyperparameters(model)
    protocol: Protocol
    crop: Crop  # so a checkpoint can crop new data itself
    sigma_from_fit: bool = False  # sigma was `asymmetry` in params.yaml and holds the fitted numbers

    @model_validator(mode="before")
    @classmethod
    def _model_hparams(cls, data: Any):
        if isinstance(data, dict) and not isinstance(data.get("hparams"), BaseModel):
            schema = hyperparameters(data.get("model"))
            data = {**data, "hparams": schema.model_validate(data.get("hparams") or {})}
        return data

    @model_validator(mode="after")
    def _input_fits_model(self):
        multiple = model_class(self.model).input_multiple
        if any(side % multiple for side in self.input_size):
            raise ValueError(f"input_size: the {self.model} model needs width and height divisible by {multiple}, "
                             f"got {list(self.input_size)}; use e.g. 64")
        if self.pitch_view is not None and self.pitch_view >= self.input_size[0]:
            raise ValueError(f"pitch_view: {self.pitch_view} px is not coarser than the {self.input_size[0]} px wide input; "
                             "give a smaller width (e.g. two thirds of it) or null")
        return self

    def for_seed(self, seed: int) -> "Experiment":
        """The run of this experiment trained with `seed` (initialisation, batch order,
        augmentation; and the train/test split too when split_per_seed is set)."""
        return self.model_copy(update={"seed": seed, **({"split_seed": seed} if self.split_per_seed else {})})

    def summary(self) -> dict:
        """Every value as plain data, the model's hyperparameters lifted to the top level (what
        MLflow logs as a run's params, flattened by pipeline.engine.tracking.flat_params)."""
        dump = self.model_dump(mode="json")
        return {**{k: v for k, v in dump.items() if k != "hparams"}, **dump["hparams"]}


def resolve_experiment(params: Params, name: str, overrides: dict | None = None, fit: dict | None = None,
                       spec: dict | None = None, where: str | None = None) -> Experiment:
    """The frozen configuration of experiment `name`: params.yaml `train` overlaid with
    `experiments.<name>` (or `spec`, an experiment given elsewhere such as the asymmetry stage's
    LeNet) and `overrides` (a sweep trial's values). With `fit` (results/asymmetry/fit.json), a
    `sigma: asymmetry` becomes the fitted per-angle sigmas; without it the value stays
    'asymmetry' and such a model cannot be built (pipeline.configure resolves it)."""
    where = where or f"experiments.{name}"
    if spec is None:
        if name not in params.experiments:
            raise ConfigError(f"params.yaml: no experiment {name!r} under experiments (known: {', '.join(params.experiments)})")
        spec = params.experiments[name]
    spec = {**spec, **(overrides or {})}
    if "model" not in spec:
        raise ConfigError(f"params.yaml {where}: 'model' is required")
    try:
        schema = hyperparameters(spec["model"])
    except ConfigError as exc:
        raise ConfigError(f"params.yaml {where}.model: {exc}") from None
    train = params.train.model_dump()
    hparams, unknown = {}, []
    for key, value in spec.items():
        if key == "model":
            continue
        if key in train:
            train[key] = value
        elif key in schema.model_fields:
            hparams[key] = value
        else:
            unknown.append(key)
    if unknown:
        allowed = sorted([*train, *schema.model_fields])
        raise ConfigError(f"params.yaml {where}: unknown key(s) {', '.join(sorted(unknown))}; the {spec['model']} model takes: {', '.join(allowed)}")
    from_fit = hparams.get("sigma") == FROM_FIT and fit is not None
    if from_fit:
        hparams["sigma"] = list(fit["sigma_bins"])
    protocol_name = train.pop("protocol")
    if protocol_name not in params.protocols:
        raise ConfigError(f"params.yaml {where}.protocol: {protocol_name!r} is not under protocols (known: {', '.join(params.protocols)})")
    protocol = {"name": protocol_name, **params.protocols[protocol_name].model_dump()}
    crop = params.crop
    if train["store_size"] == crop.store_size:
        train["store_size"] = None  # the default store
    if train["store_size"] is not None and train["store_size"] not in crop.extra_store_sizes:
        raise ConfigError(f"params.yaml {where}.store_size: no crops are stored at {train['store_size']} px (crop.store_size "
                          f"{crop.store_size}, crop.extra_store_sizes {list(crop.extra_store_sizes)}); add it to crop.extra_store_sizes")
    # how this experiment's crops are cut, also from new data (the other stored sides are not its business)
    crop = crop.model_copy(update={"store_size": train["store_size"] or crop.store_size, "extra_store_sizes": ()})
    level = train["pitch_level_from"]
    if level is not None and (level == name or level not in params.experiments):
        raise ConfigError(f"params.yaml {where}.pitch_level_from: {level!r} is not another experiment under experiments; "
                          "name the experiment whose pitch sets the level, or null")
    values = {**train, "name": name, "model": spec["model"], "hparams": validated(schema, hparams, "params.yaml", (where,)),
              "protocol": protocol, "crop": crop, "sigma_from_fit": from_fit}
    return validated(Experiment, values, "params.yaml", (where,))


def needs_fit(params: Params, name: str) -> bool:
    """Does experiment `name` take its sigmas from the asymmetry fit (`sigma: asymmetry`)?"""
    return params.experiments.get(name, {}).get("sigma") == FROM_FIT


def read_fit(path: Path) -> dict:
    """The asymmetry stage's fit.json (its `sigma_bins` replace `sigma: asymmetry`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; an experiment with sigma: asymmetry takes its sigmas from it: run `dvc repro asymmetry`")
    try:
        fit = json.loads(path.read_text())
        sigmas = [float(v) for v in fit["sigma_bins"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataError(f"{path}: not a fit written by the asymmetry stage (no sigma_bins); run `dvc repro asymmetry`") from None
    if len(sigmas) != 3:
        raise DataError(f"{path}: sigma_bins must hold three numbers (yaw, pitch, roll), got {sigmas}; run `dvc repro asymmetry`")
    return fit


def load_experiment(config: dict, where: str) -> Experiment:
    """An Experiment from its stored form (a checkpoint's config, results/<name>/config.json);
    a config this version cannot read is one DataError line naming the file."""
    if not isinstance(config, dict):
        raise DataError(f"{where}: holds no experiment configuration; retrain it")
    try:
        return Experiment.model_validate(config)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        reason = f"{key}: {'missing' if first['type'] == 'missing' else first['msg']}"
    except ConfigError as exc:  # an unknown model name
        reason = str(exc)
    raise DataError(f"{where}: its experiment configuration does not fit this version of the harness ({reason}); retrain it")
