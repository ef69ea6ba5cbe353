"""The model registry: every model is built by name, with explicit keyword arguments.

    @register("dadl")
    class DADL(nn.Module):
        def __init__(self, backbone: Backbone = "resnet18", alpha: NonNegativeFloat = 2.0, ...): ...

    build_model("dadl", alpha=3.0)        # the other arguments take their defaults
    hyperparameters("dadl")               # the pydantic schema of those arguments

A model's constructor signature is the one place for its hyperparameters, their types and their
defaults: `register` turns it into a frozen pydantic schema, which the experiment config
(pipeline.config.experiment) uses to refuse unknown keys and bad values when params.yaml is read.

A model is an nn.Module with
    forward(images) -> outputs             images: N x 3 x h x w floats in [0, 1]
    loss(outputs, targets) -> (scalar loss, {part name: float})
    predict(outputs) -> N x 3 tensor of (yaw, pitch, roll) degrees
where targets holds "ypr" (N x 3 degrees) and "centre" (N x 2 head centre, input pixels).
A class attribute `input_multiple` (default 1) says what the input width and height must divide by.
"""
from __future__ import annotations

import inspect
import typing

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from pipeline.core.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        cls.hyperparameters = _schema(name, cls)
        cls.input_multiple = getattr(cls, "input_multiple", 1)
        _REGISTRY[name] = cls
        return cls

    return wrap


def _schema(name: str, cls) -> type[BaseModel]:
    hints = typing.get_type_hints(cls.__init__, include_extras=True)
    fields = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind is not p.KEYWORD_ONLY and p.kind is not p.POSITIONAL_OR_KEYWORD or p.default is p.empty:
            raise TypeError(f"model {name}: every constructor argument needs a type and a default ({p.name})")
        fields[p.name] = (hints[p.name], p.default)
    return create_model(f"{cls.__name__}Hyperparameters", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


def available() -> list[str]:
    return sorted(_REGISTRY)


def model_class(name: str) -> type:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(available())}")
    return _REGISTRY[name]


def hyperparameters(name: str) -> type[BaseModel]:
    """The schema of model `name`'s constructor arguments (types and defaults)."""
    return model_class(name).hyperparameters


def build_model(name: str, hparams: BaseModel | dict | None = None, **kwargs):
    """Model `name` built from a validated hyperparameter object, or from keyword arguments."""
    cls = model_class(name)
    if not isinstance(hparams, cls.hyperparameters):
        try:
            hparams = cls.hyperparameters.model_validate({**dict(hparams or {}), **kwargs})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise ConfigError(f"model {name} {'.'.join(map(str, first['loc']))}: {first['msg']}, got {first.get('input')!r}") from None
    return cls(**{k: getattr(hparams, k) for k in type(hparams).model_fields})
