"""Networks, heads, label codecs and losses; built by name through the registry (models.registry).

Adding a model is one module with a `@register(name)` class plus its import below. Models depend
on pipeline.core only (angle conventions and errors), never on the rest of the pipeline.
"""
from models.registry import available, build_model, hyperparameters, model_class, register  # noqa: F401

from models import bernoulli, dadl, hopenet, lenet, sixdrepnet  # noqa: E402,F401  (registers their models)
