"""Model registry: every model is built by name from an experiment's configuration.

Adding a model is one module with a `@register(name, defaults)` class plus its import below.
A model is an nn.Module with
    forward(images) -> outputs
    loss(outputs, targets) -> (scalar loss, {part name: float})
    predict(outputs) -> N x 3 tensor of (yaw, pitch, roll) degrees
where targets holds "ypr" (N x 3 degrees) and "centre" (N x 2 head centre, input pixels).
"""
from __future__ import annotations

from pipeline.errors import ConfigError

_REGISTRY: dict[str, tuple[type, dict]] = {}


def register(name: str, defaults: dict):
    def wrap(cls):
        _REGISTRY[name] = (cls, dict(defaults))
        return cls

    return wrap


def available() -> list[str]:
    return sorted(_REGISTRY)


def model_defaults(name: str) -> dict:
    if name not in _REGISTRY:
        raise ConfigError(f"params.yaml: unknown model {name!r}; choose one of {', '.join(available())}")
    return dict(_REGISTRY[name][1])


def build_model(config: dict):
    """Build the model named by config['model'] from the (already merged) configuration."""
    name = config.get("model")
    cls = _REGISTRY[name][0] if name in _REGISTRY else None
    if cls is None:
        raise ConfigError(f"params.yaml: unknown model {name!r}; choose one of {', '.join(available())}")
    return cls(config)


from models import bernoulli, dadl, hopenet, lenet, sixdrepnet  # noqa: E402,F401  (registers their models)
