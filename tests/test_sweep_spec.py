"""A sweep's params checked before any study is touched, and its storage opened or refused."""
from __future__ import annotations

import re

import pytest

from tests.support import merge

GRID = {"experiment": "dadl", "alpha": [1.0, 2.0], "beta": [1.0, 2.0], "epochs": 1, "pruner": "none"}


@pytest.mark.parametrize("changes, message", [
    ({"beta": []}, "sweeps.alpha_beta.beta: need a non-empty list of numbers"),
    ({"beta": [1.0, "x"]}, "sweeps.alpha_beta.beta: need a non-empty list of numbers"),
    ({"epochs": 0}, "sweeps.alpha_beta.epochs: need a whole number >= 1"),
    ({"pruner": "hyperband"}, "sweeps.alpha_beta.pruner: unknown pruner 'hyperband'"),
])
def test_bad_grids_are_config_errors(changes, message):
    from pipeline.config.params import Params
    from pipeline.core.errors import ConfigError
    from sweeps.spec import Sweep, read_spec
    from tests.support import repo_params

    params = Params.model_validate(merge(repo_params(), {"sweeps": {"alpha_beta": {**GRID, **changes}}}))
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_spec(Sweep(name="alpha_beta", plot=None, grid=("alpha", "beta")), params)


def test_unreachable_storage_is_a_config_error(tmp_path):
    from pipeline.core.errors import ConfigError
    from sweeps.study import open_storage

    with pytest.raises(ConfigError, match=re.escape("--storage postgresql://nobody:***@127.0.0.1:9/none: cannot open it")):
        open_storage("postgresql://nobody:secret@127.0.0.1:9/none", tmp_path)


@pytest.mark.parametrize("epochs, expected", [(1, [1]), (2, [1, 2]), (3, [1, 3]), (4, [1, 3, 4]), (9, [1, 3, 9]), (10, [1, 3, 9, 10])])
def test_halving_rungs_grow_by_three_and_end_at_the_sweeps_epochs(epochs, expected):
    from sweeps.halving import rungs

    assert rungs(epochs) == expected
