"""params.yaml read once into typed, frozen objects: every bad value is one line naming its key,
and an experiment's whole configuration is resolved in one place."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config.experiment import Experiment, load_experiment, needs_fit, resolve_experiment
from pipeline.config.params import Params, load_params
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.paths import crop_store
from tests.support import ROOT, experiment, merge, params_with, repo_params, write_params


def test_repository_params_resolve_every_experiment():
    params = load_params(ROOT / "params.yaml")
    for name in params.experiments:
        exp = resolve_experiment(params, name)
        assert exp.name == name and len(exp.input_size) == 2 and exp.protocol.name in params.protocols
    assert resolve_experiment(params, "bernoulli_at_bg").input_size == (128, 96)  # [width, height]
    assert resolve_experiment(params, "dadl").input_size == (params.train.input_size[0],) * 2  # one side


@pytest.mark.parametrize("change, message", [
    ({"train": {"epochs": "ten"}}, "params.yaml train.epochs: Input should be a valid integer, unable to parse string as an integer, got 'ten'"),
    ({"train": {"epochs": True}}, "params.yaml train.epochs: a number is needed, not true/false, got True"),
    ({"train": {"lr": -1}}, "params.yaml train.lr: Input should be greater than 0, got -1"),
    ({"train": {"optimiser": "adam"}}, "params.yaml train.optimiser: unknown key; remove it or fix its spelling"),
    ({"train": {"protocol": "p9"}}, "params.yaml train.protocol: 'p9' is not under protocols"),
    ({"crop": {"store_size": "big"}}, "params.yaml crop.store_size: Input should be a valid integer"),
    ({"crop": {"train_k": [0.4, 0.2]}}, "params.yaml crop.train_k: give [low, high] with low <= high"),
    ({"crop": {"extra_store_sizes": [72]}}, "params.yaml crop.extra_store_sizes: give sides other than store_size (72) and each once, got [72]"),
    ({"crop": {"extra_store_sizes": [96, 96]}}, "params.yaml crop.extra_store_sizes: give sides other than store_size (72) and each once"),
    ({"data": {"synthetic": {"test_images": -5}}}, "params.yaml data.synthetic.test_images: Input should be greater than or equal to 1, got -5"),
    ({"data": {"synthetic": {"camera_distance": [40, 10]}}},
     "params.yaml data.synthetic.camera_distance: give [nearest, farthest] with nearest <= farthest, got [40.0, 10.0]"),
    ({"data": {"synthetic": {"eye_contact": 1.5}}}, "params.yaml data.synthetic.eye_contact: Input should be less than or equal to 1, got 1.5"),
    ({"data": {"synthetic": {"closed_lips": -0.1}}}, "params.yaml data.synthetic.closed_lips: Input should be greater than or equal to 0, got -0.1"),
    ({"data": {"synthetic": {"eye_detail": 2}}}, "params.yaml data.synthetic.eye_detail: Input should be less than or equal to 1, got 2"),
    ({"train": {"ema": 1.0}}, "params.yaml train.ema: Input should be less than 1, got 1.0"),
    ({"train": {"ema": True}}, "params.yaml train.ema: a number is needed, not true/false, got True"),
    ({"train": {"augment": {"sharpen_max": 1.0}}}, "params.yaml train.augment.sharpen_max: Input should be greater than 1, got 1.0"),
    ({"train": {"augment": {"random_conv_sizes": [1, 4]}}},
     "params.yaml train.augment.random_conv_sizes.1: a kernel size must be odd (it is centred on its pixel), got 4"),
    ({"robustness": {"shift": 0.7}}, "params.yaml robustness.shift: Input should be less than 0.5, got 0.7"),
    ({"run": ["dadl", "nope"]}, "params.yaml run: 'nope' is not under experiments"),
])
def test_bad_values_are_one_line_naming_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        load(change)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def load(change: dict):
    from pipeline.config.params import validated

    return validated(Params, merge(repo_params(), change), "params.yaml")


@pytest.mark.parametrize("overrides, message", [
    ({"sigma": "wide"}, "params.yaml experiments.x.sigma: "),
    ({"epochs": 0}, "params.yaml experiments.x.epochs: Input should be greater than or equal to 1, got 0"),
    ({"alpah": 1}, "params.yaml experiments.x: unknown key(s) alpah; the dadl model takes: alpha, augment, backbone"),
    ({"protocol": "p9"}, "params.yaml experiments.x.protocol: 'p9' is not under protocols"),
    ({"store_size": 96}, "params.yaml experiments.x.store_size: no crops are stored at 96 px (crop.store_size 72, crop.extra_store_sizes [110]); "
                         "add it to crop.extra_store_sizes"),
    ({"pitch_level_from": "x"}, "params.yaml experiments.x.pitch_level_from: 'x' is not another experiment under experiments"),
    ({"pitch_level_from": "nope"}, "params.yaml experiments.x.pitch_level_from: 'nope' is not another experiment under experiments"),
])
def test_bad_experiment_values_name_the_experiment_and_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        resolve_experiment(params_with("x", "dadl", **overrides), "x")
    assert str(err.value).startswith(message), str(err.value)


def test_store_size_picks_the_store_and_how_new_data_is_cropped():
    """An experiment's store_size: one of crop.extra_store_sizes picks that store, and the crop
    settings it carries (to crop real folders) are at that side; crop.store_size itself, or none,
    is the default store. The other stored sides are not part of any experiment's config, so
    adding one retrains nothing."""
    default = experiment("x", "dadl")
    assert default.store_size is None and default.crop.store_size == 72 and default.crop.extra_store_sizes == ()
    assert experiment("x", "dadl", store_size=72).store_size is None
    wide = experiment("x", "dadl", store_size=110)
    assert wide.store_size == 110 and wide.crop.store_size == 110 and wide.crop.extra_store_sizes == ()
    assert wide.crop.model_dump(exclude={"store_size"}) == default.crop.model_dump(exclude={"store_size"})
    assert crop_store("aflw2000", None, Path("c")) == Path("c/aflw2000") and crop_store("aflw2000", 110, Path("c")) == Path("c/110px/aflw2000")
    more = merge(repo_params(), {"crop": {"extra_store_sizes": [110, 48]}})
    from pipeline.config.params import validated  # noqa: PLC0415

    assert resolve_experiment(validated(Params, more, "params.yaml"), "dadl") == resolve_experiment(load_params(ROOT / "params.yaml"), "dadl")


def test_repository_sim2real_is_the_levelled_pair():
    """params.yaml's sim2real trains on the 110 px store and takes its pitch level from
    sim2real_level, which trains on the default store."""
    params = load_params(ROOT / "params.yaml")
    pair = resolve_experiment(params, "sim2real")
    level = resolve_experiment(params, "sim2real_level")
    assert pair.store_size in params.crop.extra_store_sizes and pair.pitch_level_from == "sim2real_level"
    assert pair.input_size[0] <= pair.store_size and pair.pitch_view < pair.input_size[0]
    assert level.store_size is None and level.pitch_level_from is None and level.hparams.pretrained is False


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 10\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: not valid YAML at line 4, column 1"):
        load_params(tmp_path / "params.yaml")


def test_a_missing_section_is_named(tmp_path):
    raw = repo_params()
    del raw["robustness"]
    write_params(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"params\.yaml robustness: missing"):
        load_params(tmp_path / "params.yaml")


def test_sigma_from_the_asymmetry_fit_is_resolved_only_when_asked():
    params = load_params(ROOT / "params.yaml")
    assert needs_fit(params, "dadl_asym") and not needs_fit(params, "dadl")
    unresolved = resolve_experiment(params, "dadl_asym")
    assert unresolved.hparams.sigma == "asymmetry" and not unresolved.sigma_from_fit
    fitted = resolve_experiment(params, "dadl_asym", fit={"sigma_bins": [0.9, 0.8, 1.3]})
    assert fitted.hparams.sigma == (0.9, 0.8, 1.3) and fitted.sigma_from_fit
    assert resolve_experiment(params, "dadl", fit={"sigma_bins": [0.9, 0.8, 1.3]}).hparams.sigma == (1.0, 2.0, 0.5)


def test_experiment_is_frozen_and_round_trips_through_its_stored_form():
    exp = resolve_experiment(load_params(ROOT / "params.yaml"), "bernoulli_at_bg")
    with pytest.raises(ValidationError):
        exp.epochs = 3
    stored = exp.model_dump(mode="json")
    assert load_experiment(stored, "model.pt") == exp
    from pipeline.engine.tracking import flat_params

    flat = flat_params(exp.summary())
    assert flat["gamma"] == "4.0" and flat["protocol.name"] == "p2_bg" and flat["crop.store_size"] == str(exp.crop.store_size)
    with pytest.raises(DataError, match=r"model\.pt: its experiment configuration does not fit this version of the harness"):
        load_experiment({k: v for k, v in stored.items() if k != "crop"}, "model.pt")
    assert isinstance(load_experiment(stored, "x"), Experiment)
