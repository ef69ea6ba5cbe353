"""params.yaml, read and checked once: every section is a frozen, typed object.

    params = load_params()            # Params; a bad value stops here with one line naming its key
    params.crop.store_size            # an int >= 8
    params.train.input_size           # (width, height), whether params.yaml gives 64 or [64, 48]

Each section lists every key it takes; an unknown key, a value of the wrong type or out of range
is refused with `params.yaml <section>.<key>: <what is wrong>, got <value>`. The values live in
params.yaml only (no defaults here), so a DVC stage that lists a section under `params:` sees
every value it reads. Experiments are resolved from these sections by pipeline.config.experiment.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError, model_validator

from pipeline.core.errors import ConfigError
from pipeline.core.fields import Count, NonNegativeFloat, NotBool, PositiveFloat, PositiveInt, Probability, Share
from pipeline.core.paths import PARAMS

DATASETS = ("300w_lp", "aflw2000", "biwi", "biwi_npz")  # what data.sources can name
STORES = (*DATASETS, "biwi_frames")  # crop stores a protocol can train or test on (biwi_frames: BIWI whole frames)
Dataset = Literal["300w_lp", "aflw2000", "biwi", "biwi_npz"]
Store = Literal["300w_lp", "aflw2000", "biwi", "biwi_npz", "biwi_frames"]




def _side_pair(value):
    """64 -> (64, 64); [w, h] stays: one side for square inputs, or [width, height]."""
    return (value, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Size = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_side_pair)]  # (width, height) in pixels


def _odd(value):
    if value % 2 == 0:
        raise ValueError("a kernel size must be odd (it is centred on its pixel)")
    return value


OddSide = Annotated[PositiveInt, AfterValidator(_odd)]  # a convolution kernel's side


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Synthetic(Section):
    """The built-in renderer (pipeline.sources.synthetic)."""

    seed: Count
    image_size: Annotated[int, Field(ge=32), NotBool]
    train_per_subset: PositiveInt
    test_images: PositiveInt
    biwi_sequences: PositiveInt
    biwi_frames: PositiveInt
    biwi_size: tuple[Annotated[int, Field(ge=32), NotBool], Annotated[int, Field(ge=32), NotBool]]
    label_noise: NonNegativeFloat
    camera_distance: tuple[PositiveFloat, PositiveFloat]
    hair_volume: PositiveFloat
    eye_contact: Probability
    closed_lips: Probability
    eye_detail: Probability

    @model_validator(mode="after")
    def _distance(self):
        if self.camera_distance[0] > self.camera_distance[1]:
            raise ValueError(f"camera_distance: give [nearest, farthest] with nearest <= farthest, got {list(self.camera_distance)}")
        return self


class Data(Section):
    sources: dict[Dataset, str | None]
    sha256: dict[Dataset, str]
    synthetic: Synthetic

    @model_validator(mode="after")
    def _sources(self):
        if self.sources.get("biwi_npz") == "synthetic":
            raise ValueError("sources.biwi_npz: the built-in renderer writes raw BIWI (biwi), not FSA-Net's .npz; give a path or null")
        if not any(v is not None for v in self.sources.values()):
            raise ValueError("sources: every dataset is null; set at least one (e.g. 300w_lp: synthetic)")
        return self

    def used(self) -> dict[str, str]:
        return {k: v for k, v in self.sources.items() if v is not None}


class Crop(Section):
    rule: Literal["hopenet", "fsanet"]
    train_k: tuple[NonNegativeFloat, NonNegativeFloat]
    test_k: NonNegativeFloat
    biwi_box_mm: PositiveFloat
    store_size: Annotated[int, Field(ge=8), NotBool]
    # the crop stage also stores every dataset (not BIWI's whole frames) at each of these sides, under
    # data/crops/<side>px/<dataset>, for experiments that set store_size. Empty for checkpoints from before the key existed
    extra_store_sizes: tuple[Annotated[int, Field(ge=8), NotBool], ...] = ()
    frame_size: tuple[Annotated[int, Field(ge=8), NotBool], Annotated[int, Field(ge=8), NotBool]] | None
    seed: Count
    workers: Count  # processes decoding images; 0: one per CPU core

    @model_validator(mode="after")
    def _k_range(self):
        if not self.train_k[0] <= self.train_k[1]:
            raise ValueError(f"train_k: give [low, high] with low <= high, got {list(self.train_k)}")
        return self

    @model_validator(mode="after")
    def _distinct_sizes(self):
        sizes = [self.store_size, *self.extra_store_sizes]
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"extra_store_sizes: give sides other than store_size ({self.store_size}) and each once, "
                             f"got {list(self.extra_store_sizes)}")
        return self


class SplitFiles(Section):
    train: list[str] = Field(min_length=1)
    test: list[str] = Field(min_length=1)


class ProtocolSpec(Section):
    """What trains on what (pipeline.data.protocols): a training store, test stores, and for a
    protocol within one dataset how it is split."""

    train: Store
    test: list[Store] = Field(min_length=1)
    split: tuple[PositiveInt, PositiveInt] | None = None  # sequences for training / testing
    split_files: SplitFiles | None = None  # files already split (FSA-Net's BIWI_train / BIWI_test)

    @model_validator(mode="after")
    def _split(self):
        if self.train in self.test and self.split is None and self.split_files is None:
            raise ValueError(f"test: includes the training dataset {self.train} without a split; add split: [train, test] sequences")
        return self


class Protocol(ProtocolSpec):
    """A protocol with its name, as an experiment carries it."""

    name: str


class Augment(Section):
    """Photometric augmentation of training crops (pipeline.data.augment): colour factors drawn
    in [1 - x, 1 + x], and the probability of each other change per sample. Every key defaults
    to off, so `augment: {random_conv: 0.5}` turns on one change alone."""

    brightness: Annotated[float, Field(ge=0, lt=1), NotBool] = 0.0
    contrast: Annotated[float, Field(ge=0, lt=1), NotBool] = 0.0
    saturation: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0
    grey: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0  # probability of a grey image
    blur: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0  # probability of a Gaussian blur ...
    blur_sigma: Annotated[float, Field(ge=0.3), NotBool] = 1.5  # ... of sigma up to this many pixels
    noise: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0  # probability of additive noise ...
    noise_std: NonNegativeFloat = 0.0  # ... of std up to this (images in [0, 1])
    erase: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0  # probability of a random-erasing rectangle ...
    erase_area: tuple[Share, Share] = (0.02, 0.2)  # ... covering this share of the crop
    random_conv: Probability = 0.0  # probability of a random convolution ...
    random_conv_sizes: tuple[OddSide, ...] = Field((1, 3, 5, 7), min_length=1)  # ... of one of these kernel sizes
    resolution: Probability = 0.0  # probability of a coarser copy: the crop down-sampled and up-sampled back ...
    resolution_min: Annotated[float, Field(gt=0, lt=1), NotBool] = 0.5  # ... to a side drawn in [this share, 1] of its own
    sharpen: Probability = 0.0  # probability of sharpening (torchvision adjust_sharpness) ...
    sharpen_max: Annotated[float, Field(gt=1), NotBool] = 3.0  # ... by a factor drawn in [1, this]


class Schedule(Section):
    """How one experiment trains: every key of params.yaml `train` but the protocol. An
    experiment overrides any of them."""

    split_by: Literal["sequence", "person"]
    split_seed: Count
    input_size: Size
    epochs: PositiveInt
    batch_size: PositiveInt
    optimizer: Literal["adam", "sgd"]
    lr: PositiveFloat
    momentum: NonNegativeFloat
    weight_decay: NonNegativeFloat
    lr_milestones: tuple[PositiveInt, ...]
    lr_gamma: PositiveFloat
    val_fraction: Share
    seed: Count
    precision: Literal["auto", "bf16", "fp16", "fp32"]  # auto: bf16 on CUDA, fp32 on CPU
    prefetch: Literal["auto"] | Count  # batches prepared ahead in a background thread; auto: 2 on CUDA, 0 on the CPU
    split_per_seed: StrictBool  # a run trained with seed k also splits its data with seed k (else split_seed)
    augment: Augment | None  # photometric augmentation of training crops; null: none
    # test-time flip augmentation: every score of a checkpoint (evaluate, robustness, report, predict) is the mean of the
    # crop's and its mirror's prediction; not the per-epoch validation. False for checkpoints from before the key existed
    test_flip: StrictBool = False
    # exponential moving average of the weights (and BatchNorm statistics), updated after every step with this decay; the
    # checkpoint and the per-epoch validation are the average's. null: none (the last step's weights)
    ema: Annotated[float, Field(gt=0, lt=1), NotBool] | None = None
    # test-time: pitch is read from the input down-sampled to this many pixels wide (height in proportion; bilinear,
    # antialiased) and up-sampled back, yaw and roll from the input itself; with test_flip, both views are flip-averaged.
    # Every score of a checkpoint follows it, not the per-epoch validation. null: all three angles from the input
    pitch_view: PositiveInt | None = None
    # the side of the stored crops this experiment trains and tests on: null, crop.store_size (data/crops/<dataset>); else
    # one of crop.extra_store_sizes (data/crops/<side>px/<dataset>). Real folders are cropped at it too
    store_size: Annotated[int, Field(ge=8), NotBool] | None = None
    # the experiment whose checkpoint (same seed) sets the level of this one's pitch where real photographs are scored
    # (pipeline.evaluate --root, the report's real AFLW2000 section): every pitch shifted by one amount, the median over the
    # folder's images of this model's pitch minus the other's; no labels used. The evaluate stage's test sets are not shifted
    pitch_level_from: str | None = None


class Train(Schedule):
    protocol: str


class Asymmetry(Section):
    experiment: dict[str, Any]  # the LeNet experiment, resolved like any other (pipeline.config.experiment)
    centre_images: PositiveInt
    bin_width: PositiveFloat
    tolerance: NonNegativeFloat
    max_offset: PositiveFloat
    mean_sigma: PositiveFloat


class Robustness(Section):
    repeats: PositiveInt
    shift: Annotated[float, Field(gt=0, lt=0.5)]
    occluded_area: tuple[Annotated[float, Field(gt=0, lt=1)], Annotated[float, Field(gt=0, lt=1)]]

    @model_validator(mode="after")
    def _area(self):
        if self.occluded_area[0] > self.occluded_area[1]:
            raise ValueError(f"occluded_area: give [low, high] with low <= high, got {list(self.occluded_area)}")
        return self


class Report(Section):
    real_aflw2000: str  # folder of real AFLW2000 images for the sim-to-real section (relative to the repository)


class Params(Section):
    data: Data
    crop: Crop
    protocols: dict[str, ProtocolSpec] = Field(min_length=1)
    train: Train
    run: list[str]
    seeds: list[Count] = Field(min_length=1)  # each experiment of `run` is trained once per seed
    experiments: dict[str, dict[str, Any]]
    asymmetry: Asymmetry
    robustness: Robustness
    report: Report
    sweeps: dict[str, dict[str, Any]]  # read and checked by the sweeps (sweeps/spec.py)

    @model_validator(mode="after")
    def _references(self):
        if self.train.protocol not in self.protocols:
            raise ValueError(f"train.protocol: {self.train.protocol!r} is not under protocols (known: {', '.join(self.protocols)})")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed once, got {self.seeds}")
        for name in self.run:
            if name not in self.experiments:
                raise ValueError(f"run: {name!r} is not under experiments (known: {', '.join(self.experiments)})")
        for name, spec in self.experiments.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("model"), str):
                raise ValueError(f"experiments.{name}: give a mapping with at least 'model'")
            if "protocol" in spec and spec["protocol"] not in self.protocols:
                raise ValueError(f"experiments.{name}.protocol: {spec['protocol']!r} is not under protocols (known: {', '.join(self.protocols)})")
        return self


def read_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error is one line with its line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; run from the repository root")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path.name}: not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_params(path: Path = PARAMS) -> Params:
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{Path(path).name}: expected a mapping of sections at the top level; restore it from git (git checkout params.yaml)")
    return validated(Params, raw, Path(path).name)


def validated(schema: type[BaseModel], values: Any, where: str, prefix: tuple = ()):
    """schema(values), or the first problem as one ConfigError line `<where> <key path>: ...`."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise config_error(exc, where, prefix) from None


def config_error(exc: ValidationError, where: str, prefix: tuple = ()) -> ConfigError:
    first = exc.errors(include_url=False)[0]
    loc = [str(p) for p in (*prefix, *first["loc"]) if str(p) != "[key]" and not str(p).startswith(("function-", "tuple[", "list["))]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return ConfigError(f"{where} {'.'.join(loc)}: missing; add it (see params.yaml in git for every key)")
    if first["type"] == "extra_forbidden":
        return ConfigError(f"{where} {'.'.join(loc)}: unknown key; remove it or fix its spelling")
    if first["type"] == "value_error" and message.split(" ")[0].endswith(":"):  # our checks name their key first
        return ConfigError(f"{where} {'.'.join([*loc, message])}")
    shown = first.get("input")
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return ConfigError(f"{where} {'.'.join(loc)}: {message}, got {shown!r}{more}")
