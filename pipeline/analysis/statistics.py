"""Numbers that can be trusted: means over training seeds with 95% intervals, comparisons of two
experiments, and verdicts on the papers' claims (issue 17).

Two sources of noise move a harness number: the training run (seed: initialisation, batch order,
augmentation) and the finite test set. Both are resampled by a hierarchical bootstrap:

- per experiment, its seeds are drawn with replacement;
- then the test set's resampling units are drawn with replacement, one draw shared by all drawn
  seeds (seeds and samples are crossed: every seed's model scores every test sample). The units
  are single samples (AFLW2000), or whole sequences when the predictions carry sequence ids
  (BIWI: the frames of one sequence show one person in one room, so their errors move together
  and resampling frames one by one would understate the test set's noise). In a paired
  comparison both experiments get the *same* resampled units, so the difficulty of a sample,
  shared by both, cancels in the difference.

Two small-sample corrections (the procedure with both is checked for coverage by
tests/test_statistics.py on simulated errors whose truth is known):

1. A bootstrap of n values has variance (n - 1)/n times the variance of their mean. Each
   resample's seed deviation is therefore scaled by sqrt(S/(S-1)) and its unit deviation by
   sqrt(G/(G-1)) (S seeds, G units), which makes the bootstrap variance unbiased.
2. With 2, 3 or 5 seeds the seed variance is itself estimated from 1, 2 or 4 degrees of freedom,
   so a normal-quantile interval is too short (Student's t): simulated with seed noise
   dominating, it covered 81%, 87% and 93% instead of 95%. The percentile interval is therefore
   stretched about the point estimate by t_{nu, 0.975} / z_{0.975}, where nu is the
   Welch-Satterthwaite degrees of freedom of the variance components (seed variance of each
   experiment with S - 1 df, test-set variance with G - 1 df); the same simulations then
   covered 96%, 96% and 96% (1000 repeats each). With many seeds and units the factor is 1 and
   the interval is the plain percentile interval.

One seed: the value and "1 seed, no interval" (seed noise cannot be estimated from one run, and
an interval of the test-set noise alone would look far more certain than one run is).

Everything is vectorised (numpy matrix products over resample weights) and seeded: `seed` is the
bootstrap's np.random.Generator seed, so a report is reproducible. 4000 resamples of 5 seeds x
2000 samples take about 0.3 s of CPU. (Many tiny bootstraps on a busy machine run faster with
BLAS limited to one thread, e.g. threadpoolctl.threadpool_limits(1), as the tests do.)

Readers: `load_run_errors` reads the per-sample predictions the pipeline writes (one seed:
results/<experiment>/predictions/<test set>.csv; several: results/<experiment>/seed-<k>/predictions/
<test set>.csv) and returns them sorted by sample_id; `check_claim` aligns two experiments on
sample_id and refuses misaligned files with one line naming them.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.core.angles import ANGLES
from pipeline.core.errors import DataError

METRICS = (*ANGLES, "mae")  # per-angle MAE and their mean, the harness's order
LEVEL = 0.95
RESAMPLES = 4000
POWER = 0.8  # seeds_needed: chance that the interval excludes 0 when the true difference is the paper's
MAX_SEEDS = 1000  # seeds_needed: beyond this, "more than 1000" (None)
ONE_SEED = "1 seed, no interval"
SEED_DIR = re.compile(r"^seed-(\d+)$")
ERROR_COLUMNS = tuple(f"err_{a}" for a in ANGLES)
VERDICTS = ("supported", "contradicted", "not resolved", "not run")


# --------------------------------------------------------------------------------------------
# Data: one experiment's per-seed, per-sample errors on one test set


@dataclass(frozen=True, eq=False)
class RunErrors:
    """Absolute errors (degrees) of one experiment on one test set, per seed and sample.

    errors: array (seeds, samples, 3) in the order yaw, pitch, roll; sample_ids sorted; groups:
    each sample's sequence ("" when the test set has none, e.g. AFLW2000); seeds: the seed of each
    row (None for the one-seed layout results/<experiment>/predictions/, whose seed is train.seed);
    files: the CSV files read, one per seed.
    """

    experiment: str
    test_set: str
    seeds: tuple
    sample_ids: np.ndarray
    groups: np.ndarray
    errors: np.ndarray
    files: tuple = ()

    @property
    def n_seeds(self) -> int:
        return int(self.errors.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.errors.shape[1])

    def per_seed(self) -> dict[str, list[float]]:
        """Per metric, the value of each seed's run (for the report's appendix and dvc metrics)."""
        per_angle = self.errors.mean(axis=1)  # (seeds, 3)
        values = np.column_stack([per_angle, per_angle.mean(axis=1)])
        return {m: [float(v) for v in values[:, i]] for i, m in enumerate(METRICS)}


def run_errors(errors, sample_ids=None, groups=None, *, experiment: str = "", test_set: str = "",
               seeds: Sequence | None = None) -> RunErrors:
    """RunErrors from arrays: errors (seeds, samples, 3) or (seeds, samples) (then taken as the
    per-sample MAE and copied to the three angles). For simulations and tests."""
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim == 2:
        e = np.repeat(e[:, :, None], 3, axis=2)
    if e.ndim != 3 or e.shape[2] != 3 or e.shape[0] < 1 or e.shape[1] < 1:
        raise ValueError(f"errors must be (seeds, samples, 3) or (seeds, samples), got shape {np.shape(errors)}")
    n = e.shape[1]
    ids = np.asarray([f"{i:06d}" for i in range(n)] if sample_ids is None else sample_ids).astype(str)
    grp = np.full(n, "", dtype=object) if groups is None else np.asarray(groups).astype(str)
    order = np.argsort(ids, kind="stable")
    return RunErrors(experiment, test_set, tuple(range(e.shape[0]) if seeds is None else seeds), ids[order],
                     grp[order], e[:, order, :])


# --------------------------------------------------------------------------------------------
# Readers


def seed_folders(results: Path, experiment: str) -> dict[int, Path]:
    """results/<experiment>/seed-<k>/ folders by seed k, in seed order."""
    base = Path(results) / experiment
    found = {}
    if base.is_dir():
        for p in base.iterdir():
            m = SEED_DIR.match(p.name)
            if m and p.is_dir():
                found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def prediction_files(results: Path, experiment: str, test_set: str, seeds: Sequence[int] | None = None) -> dict:
    """{seed: path} of the predictions to read; {} when the experiment has not been run.

    seeds None: every results/<experiment>/seed-<k>/ folder, or, when there is none, the one-seed
    layout results/<experiment>/predictions/ (key None). A seed folder without this test set's
    predictions is an error (a seed silently left out would bias the mean).
    seeds given (params.yaml's list): exactly those seeds; with one seed its seed-<k>/ folder or,
    failing that, the one-seed layout.
    """
    base = Path(results) / experiment
    name = Path("predictions") / f"{test_set}.csv"
    plain = base / name
    if seeds is None:
        folders = seed_folders(results, experiment)
        if not folders:
            return {None: plain} if plain.is_file() else {}
        missing = [p / name for p in folders.values() if not (p / name).is_file()]
        if missing:
            have = [p / name for p in folders.values() if (p / name).is_file()]
            if not have:
                return {}
            raise DataError(f"{missing[0]}: missing while {have[0]} exists; finish that seed's run (dvc repro) or delete "
                            f"{missing[0].parents[1]}")
        return {k: p / name for k, p in folders.items()}
    seeds = [int(s) for s in seeds]
    files = {k: base / f"seed-{k}" / name for k in seeds}
    if len(seeds) == 1 and not files[seeds[0]].is_file() and plain.is_file():
        return {seeds[0]: plain}
    present = {k: p for k, p in files.items() if p.is_file()}
    if not present:
        return {}
    if len(present) < len(files):
        k, p = next((k, p) for k, p in files.items() if k not in present)
        raise DataError(f"{p}: missing (seed {k} of {experiment} has no predictions on {test_set}); run it with dvc repro")
    return files


def read_predictions(path: Path) -> pd.DataFrame:
    """One predictions CSV, checked: sample_id, sequence and err_yaw/err_pitch/err_roll present,
    sample ids unique, errors finite and non-negative."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"sample_id": str, "sequence": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable predictions CSV ({exc.__class__.__name__}); re-run evaluate (dvc repro)") from None
    missing = [c for c in ("sample_id", *ERROR_COLUMNS) if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; re-run evaluate (dvc repro) to rewrite it")
    if table.empty:
        raise DataError(f"{path}: no rows; re-run evaluate (dvc repro)")
    dup = table["sample_id"][table["sample_id"].duplicated()]
    if len(dup):
        raise DataError(f"{path}: sample_id {dup.iloc[0]!r} appears more than once; re-run evaluate (dvc repro)")
    err = pd.DataFrame({c: pd.to_numeric(table[c], errors="coerce") for c in ERROR_COLUMNS})
    bad = ~np.isfinite(err.to_numpy(np.float64)).all(axis=1) | (err.to_numpy(np.float64) < 0).any(axis=1)
    if bad.any():
        raise DataError(f"{path}: sample {table['sample_id'][bad].iloc[0]!r} has a missing, negative or non-numeric error; "
                        "re-run evaluate (dvc repro)")
    out = table[["sample_id"]].assign(sequence=table["sequence"] if "sequence" in table.columns else "")
    return pd.concat([out, err], axis=1).sort_values("sample_id", kind="stable").reset_index(drop=True)


def load_run_errors(results: Path, experiment: str, test_set: str, seeds: Sequence[int] | None = None) -> RunErrors | None:
    """The per-seed, per-sample errors of `experiment` on `test_set`, or None when it has not been
    run (no predictions in either layout). Every seed must hold the same sample ids."""
    files = prediction_files(results, experiment, test_set, seeds)
    if not files:
        return None
    tables = {k: read_predictions(p) for k, p in files.items()}
    (k0, first), path0 = next(iter(tables.items())), next(iter(files.values()))
    ids = first["sample_id"].to_numpy(str)
    for k, t in tables.items():
        if len(t) != len(first) or not np.array_equal(t["sample_id"].to_numpy(str), ids):
            other = set(t["sample_id"]) ^ set(first["sample_id"])
            example = str(sorted(other)[0]) if other else "(order)"
            raise DataError(f"{files[k]}: its sample ids differ from {path0} (e.g. {example!r}); every seed must be evaluated on "
                            "the same test set; re-run evaluate for both (dvc repro)")
    errors = np.stack([t[list(ERROR_COLUMNS)].to_numpy(np.float64) for t in tables.values()])
    return RunErrors(experiment, test_set, tuple(tables), ids, first["sequence"].to_numpy(str).astype(object), errors,
                     tuple(files.values()))


def align(a: RunErrors, b: RunErrors) -> tuple[RunErrors, RunErrors]:
    """The two runs on the same samples in the same order, or a DataError naming both files."""
    if a.n_samples == b.n_samples and np.array_equal(a.sample_ids, b.sample_ids):
        return a, b
    only_a = np.setdiff1d(a.sample_ids, b.sample_ids)
    only_b = np.setdiff1d(b.sample_ids, a.sample_ids)
    fa = a.files[0] if a.files else f"{a.experiment} on {a.test_set}"
    fb = b.files[0] if b.files else f"{b.experiment} on {b.test_set}"
    which = f"{len(only_a)} sample id(s) of {fa} (e.g. {str(only_a[0])!r}) are not in {fb}" if len(only_a) else \
        f"{len(only_b)} sample id(s) of {fb} (e.g. {str(only_b[0])!r}) are not in {fa}"
    raise DataError(f"{which}; a paired comparison needs both evaluated on the same test set (re-run evaluate, dvc repro)")


# --------------------------------------------------------------------------------------------
# The hierarchical bootstrap


def _units(run: RunErrors, resample: str) -> tuple[np.ndarray, str]:
    """Each sample's resampling unit (index) and what the units are ("sequence" or "sample")."""
    if resample not in ("auto", "sequence", "sample"):
        raise ValueError(f"resample must be auto, sequence or sample, got {resample!r}")
    groups = np.asarray(run.groups).astype(str)
    has_sequences = bool(len(groups)) and all(groups != "") and len(np.unique(groups)) >= 2
    if resample == "sequence" and not has_sequences:
        raise DataError(f"{run.experiment} on {run.test_set}: its predictions carry fewer than 2 sequence ids; resample samples instead")
    if resample == "sample" or not has_sequences:
        return np.arange(len(groups)), "sample"
    return np.unique(groups, return_inverse=True)[1], "sequence"


@dataclass(frozen=True)
class _Unitised:
    """One experiment reduced to what the bootstrap needs: per seed and unit the summed errors of
    the 4 metrics (S, G, 4), and each unit's sample count (G,)."""

    sums: np.ndarray
    counts: np.ndarray
    unit: str

    @property
    def n_seeds(self) -> int:
        return self.sums.shape[0]

    @property
    def n_units(self) -> int:
        return self.sums.shape[1]


def _unitise(run: RunErrors, index: np.ndarray, unit: str) -> _Unitised:
    e = np.concatenate([run.errors, run.errors.mean(axis=2, keepdims=True)], axis=2)  # (S, N, 4)
    g = int(index.max()) + 1
    sums = np.zeros((e.shape[0], g, 4))
    np.add.at(sums, (slice(None), index), e)
    return _Unitised(sums, np.bincount(index, minlength=g).astype(np.float64), unit)


def _weights(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """(b, n) multiplicities of n items drawn n times with replacement, b times."""
    dtype = np.int32 if b * n < 2**31 else np.int64
    draws = rng.integers(0, n, size=(b, n), dtype=dtype)
    draws += (np.arange(b, dtype=dtype) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def _inflation(n: int) -> float:
    return math.sqrt(n / (n - 1)) if n > 1 else 1.0


def _deviations(x: _Unitised, seed_w: np.ndarray | None, unit_w: np.ndarray) -> np.ndarray:
    """(B, 4) bootstrap deviations of x's mean from its point estimate, both levels inflated
    (module docstring, correction 1). seed_w None: the seeds are not resampled (one seed)."""
    n_star = unit_w @ x.counts  # (B,) samples in each resample
    per_seed = np.tensordot(unit_w, x.sums, axes=([1], [1]))  # (B, S, 4): each seed's resampled sums
    all_seeds = per_seed.mean(axis=1) / n_star[:, None]  # M(all seeds, resampled units)
    theta = x.sums.mean(axis=0).sum(axis=0) / x.counts.sum()  # (4,) point estimate
    dev = _inflation(x.n_units) * (all_seeds - theta)
    if seed_w is not None and x.n_seeds > 1:
        both = np.einsum("bs,bsk->bk", seed_w, per_seed) / x.n_seeds / n_star[:, None]  # M(resampled seeds, units)
        dev = dev + _inflation(x.n_seeds) * (both - all_seeds)
    return dev


def _point(x: _Unitised) -> np.ndarray:
    return x.sums.mean(axis=0).sum(axis=0) / x.counts.sum()


def _seed_var(x: _Unitised) -> np.ndarray:
    """(4,) variance of x's mean from seed to seed: var over seeds of each seed's value / S."""
    if x.n_seeds < 2:
        return np.zeros(4)
    per_seed = x.sums.sum(axis=1) / x.counts.sum()  # (S, 4)
    return per_seed.var(axis=0, ddof=1) / x.n_seeds


def _unit_var(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(4,) variance of a ratio mean sum(sums)/sum(counts) from resampling its G units
    (linearisation: the units' residuals sums_g - mean * counts_g)."""
    g = len(counts)
    if g < 2:
        return np.zeros(4)
    mean = sums.sum(axis=0) / counts.sum()
    z = sums - mean[None, :] * counts[:, None]
    return g / (g - 1) * (z**2).sum(axis=0) / counts.sum() ** 2


def _satterthwaite(components: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """(4,) Welch-Satterthwaite degrees of freedom of a sum of variance components (var, df)."""
    total = sum(v for v, _ in components)
    denom = sum(v**2 / df for v, df in components if df > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.where(denom > 0, total**2 / np.where(denom > 0, denom, 1.0), np.inf)
    return nu


def _interval(point: np.ndarray, dev: np.ndarray, nu: np.ndarray, level: float) -> np.ndarray:
    """(4, 2) percentile interval of point + dev, stretched about the point by t_nu / z
    (module docstring, correction 2)."""
    q = (1 - level) / 2
    lo, hi = np.quantile(dev, [q, 1 - q], axis=0)
    z = stats.norm.ppf(1 - q)
    k = np.where(np.isfinite(nu), stats.t.ppf(1 - q, np.where(np.isfinite(nu), np.maximum(nu, 1e-9), 1.0)) / z, 1.0)
    return np.column_stack([point + k * lo, point + k * hi])


def _chunks(total: int, size: int = 500):
    done = 0
    while done < total:
        yield min(size, total - done)
        done += size


# --------------------------------------------------------------------------------------------
# One experiment over seeds


@dataclass(frozen=True)
class Summary:
    """One experiment on one test set: per metric (yaw, pitch, roll, mae) the mean over seeds and
    samples, its 95% interval (None with one seed: then note is "1 seed, no interval"), and each
    seed's value."""

    experiment: str
    test_set: str
    n_seeds: int
    n_samples: int
    unit: str  # what the test-set level resampled: "sample" or "sequence"
    n_units: int
    mean: dict
    interval: dict | None
    per_seed: dict
    seeds: tuple
    level: float
    note: str = ""

    def row(self, metric: str = "mae", digits: int = 2) -> str:
        """'11.79 [11.20, 12.41] (5 seeds)', or '11.79 (1 seed, no interval)'."""
        if self.interval is None:
            return f"{self.mean[metric]:.{digits}f} ({ONE_SEED})"
        lo, hi = self.interval[metric]
        return f"{self.mean[metric]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] ({self.n_seeds} seeds)"


def summarize(run: RunErrors, *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0,
              resample: str = "auto") -> Summary:
    """Mean MAE (and per angle) of one experiment over its seeds, with a `level` interval from the
    hierarchical bootstrap (seeds, then test units, with replacement). One seed: no interval and
    note "1 seed, no interval"."""
    index, unit = _units(run, resample)
    x = _unitise(run, index, unit)
    point = _point(x)
    mean = {m: float(v) for m, v in zip(METRICS, point)}
    common = dict(experiment=run.experiment, test_set=run.test_set, n_seeds=run.n_seeds, n_samples=run.n_samples,
                  unit=unit, n_units=x.n_units, mean=mean, per_seed=run.per_seed(), seeds=tuple(run.seeds), level=level)
    if run.n_seeds < 2:
        return Summary(**common, interval=None, note=ONE_SEED)
    rng = np.random.default_rng(seed)
    dev = np.concatenate([_deviations(x, _weights(rng, b, x.n_seeds), _weights(rng, b, x.n_units)) for b in _chunks(resamples)])
    nu = _satterthwaite([(_seed_var(x), x.n_seeds - 1), (_unit_var(x.sums.mean(axis=0), x.counts), x.n_units - 1)])
    iv = _interval(point, dev, nu, level)
    return Summary(**common, interval={m: (float(iv[i, 0]), float(iv[i, 1])) for i, m in enumerate(METRICS)})


# --------------------------------------------------------------------------------------------
# Two experiments


@dataclass(frozen=True)
class Comparison:
    """A minus B on one test set, per metric (yaw, pitch, roll, mae): the difference of the means
    over seeds and samples, its interval (None when either has one seed), and the noise the
    interval and seeds_needed() use: seed_sd[metric] = (sd of one run's value from seed to seed
    for A, for B; None with one seed) and test_se[metric] (standard error of the difference from
    the test set alone, seed-averaged). mean: (A's means, B's means)."""

    a: str
    b: str
    test_set: str
    paired: bool
    difference: dict
    interval: dict | None
    n_seeds: tuple[int, int]
    n_samples: tuple[int, int]
    unit: str
    n_units: tuple[int, int]
    seed_sd: dict
    test_se: dict
    df: dict
    mean: tuple[dict, dict]
    level: float
    note: str = ""


def compare(a: RunErrors, b: RunErrors, *, paired: bool = True, level: float = LEVEL, resamples: int = RESAMPLES,
            seed: int = 0, resample: str = "auto") -> Comparison:
    """Difference A - B of the mean errors (per metric) with a `level` interval from a
    hierarchical bootstrap: each experiment's seeds resampled on their own; the test units
    resampled once and used for both when paired (the same samples must be in both: a DataError
    otherwise), independently for each when not (different test sets, e.g. Bernoulli 16/8 vs
    12/12). No interval when either experiment has one seed."""
    if paired:
        a, b = align(a, b)
        index, unit = _units(a, resample)
        ia = ib = index
    else:
        (ia, unit_a), (ib, unit_b) = _units(a, resample), _units(b, resample)
        unit = unit_a if unit_a == unit_b else f"{unit_a}/{unit_b}"
    xa, xb = _unitise(a, ia, unit), _unitise(b, ib, unit)
    point = _point(xa) - _point(xb)
    if paired:
        test_parts = [(_unit_var(xa.sums.mean(axis=0) - xb.sums.mean(axis=0), xa.counts), xa.n_units - 1)]
    else:
        test_parts = [(_unit_var(x.sums.mean(axis=0), x.counts), x.n_units - 1) for x in (xa, xb)]
    test_var = sum(v for v, _ in test_parts)
    sva, svb = _seed_var(xa), _seed_var(xb)
    nu = _satterthwaite([(sva, xa.n_seeds - 1), (svb, xb.n_seeds - 1), *test_parts])
    sd = lambda x, v, i: float(math.sqrt(v[i] * x.n_seeds)) if x.n_seeds > 1 else None  # noqa: E731
    per_metric = lambda values: {m: float(v) for m, v in zip(METRICS, values)}  # noqa: E731
    test_set = a.test_set if a.test_set == b.test_set else f"{a.test_set}/{b.test_set}"
    common = dict(a=a.experiment, b=b.experiment, test_set=test_set, paired=paired, difference=per_metric(point),
                  n_seeds=(a.n_seeds, b.n_seeds), n_samples=(a.n_samples, b.n_samples), unit=unit,
                  n_units=(xa.n_units, xb.n_units), seed_sd={m: (sd(xa, sva, i), sd(xb, svb, i)) for i, m in enumerate(METRICS)},
                  test_se=per_metric(np.sqrt(test_var)), df=per_metric(nu), mean=(per_metric(_point(xa)), per_metric(_point(xb))),
                  level=level)
    if min(a.n_seeds, b.n_seeds) < 2:
        few = [r.experiment or label for r, label in ((a, "A"), (b, "B")) if r.n_seeds < 2]
        return Comparison(**common, interval=None, note=f"{ONE_SEED} ({', '.join(few)})")
    rng = np.random.default_rng(seed)
    devs = []
    for n in _chunks(resamples):
        wa = _weights(rng, n, xa.n_units)
        wb = wa if paired else _weights(rng, n, xb.n_units)
        devs.append(_deviations(xa, _weights(rng, n, xa.n_seeds), wa) - _deviations(xb, _weights(rng, n, xb.n_seeds), wb))
    iv = _interval(point, np.concatenate(devs), nu, level)
    return Comparison(**common, interval={m: (float(iv[i, 0]), float(iv[i, 1])) for i, m in enumerate(METRICS)})


# --------------------------------------------------------------------------------------------
# Claims


def verdict(interval: tuple[float, float] | None, ran: bool = True) -> str:
    """A claim "A beats B" (lower error) judged on the interval of A - B: "supported" when it lies
    entirely below 0, "contradicted" when entirely above 0, "not resolved" when it holds 0 or
    there is no interval (one seed), "not run" when either experiment has no results."""
    if not ran:
        return "not run"
    if interval is None:
        return "not resolved"
    lo, hi = interval
    if hi < 0:
        return "supported"
    if lo > 0:
        return "contradicted"
    return "not resolved"


def seeds_needed(difference: float | None, seed_sd: Sequence[float | None], test_se: float, n_units: int, *,
                 level: float = LEVEL, power: float = POWER) -> tuple[int | None, str]:
    """How many seeds per experiment would resolve a true difference of size |difference| with
    probability `power`, at the noise measured. Returns (n, "") or (None, why).

    Model: the difference of the means has variance V(n) = (s_A^2 + s_B^2) / n + T, where s_X is
    the sd of one run's MAE from seed to seed (measured; it already holds the sample-by-seed
    interaction at this test-set size) and T = test_se^2 the test set's own variance of the
    difference, which more seeds do not reduce (the test set stays the same). The interval is
    about d_hat +- t_nu * sqrt(V), so it excludes 0 on the true side with probability `power` when
        |d| >= (t_{nu(n), (1+level)/2} + z_power) * sqrt(V(n)),
    the normal-approximation rule n = ((z_0.975 + z_0.8) * sd / |d|)^2 with sd^2 = s_A^2 + s_B^2,
    here with Student's t at the Welch-Satterthwaite df nu(n) (seed parts n - 1 df each, test part
    n_units - 1) and the test-set term. The smallest n >= 2 that satisfies it is returned.
    Assumptions: seed noise is the same at n seeds as measured (each s_X is itself estimated
    from few seeds, so n is a rough guide, not a guarantee); seeds are independent; both
    experiments get n seeds. One measured s (the other experiment has one seed): both are taken
    to equal it. None when neither was measured, when the test set's noise alone hides |d|, or
    beyond 1000 seeds.
    """
    if difference is None or not np.isfinite(difference) or difference == 0:
        return None, "no difference to resolve"
    known = [s for s in seed_sd if s is not None]
    if not known:
        return None, "seed noise not measured (needs 2 seeds of either experiment)"
    s2 = sum((s if s is not None else known[0]) ** 2 for s in seed_sd)
    d = abs(float(difference))
    z_power = stats.norm.ppf(power)
    q = (1 + level) / 2
    t_units = test_se**2
    if (stats.norm.ppf(q) + z_power) * math.sqrt(t_units) >= d:
        return None, f"the test set alone (SE {test_se:.2f}) hides a difference of {d:.2f}: more test samples needed, not seeds"
    for n in range(2, MAX_SEEDS + 1):
        v_seed = s2 / n
        v = v_seed + t_units
        parts = [(v_seed / 2, n - 1), (v_seed / 2, n - 1), (t_units, max(n_units - 1, 1))]
        denom = sum(p**2 / df for p, df in parts if p > 0)
        nu = v**2 / denom if denom > 0 else np.inf
        t = stats.t.ppf(q, nu) if np.isfinite(nu) else stats.norm.ppf(q)
        if (t + z_power) * math.sqrt(v) <= d:
            return n, ""
    return None, f"more than {MAX_SEEDS} seeds"


@dataclass(frozen=True)
class ClaimCheck:
    """A claim "better beats worse" checked on the harness's results (metric: mae unless asked).

    verdict: supported | contradicted | not resolved | not run; difference: ours, better - worse
    (negative when the claim holds); interval: its 95% interval or None; n_seeds: (better,
    worse); d_paper: the paper's better - worse; seeds_needed: seeds per experiment that would
    resolve a difference of the paper's size at our noise (None: see seeds_note);
    seeds_needed_relative: the same for the paper's difference as a share of its worse row's MAE,
    applied to our worse row's MAE (the harness's errors are on another scale than the paper's);
    not_run: the experiments without results."""

    better: str
    worse: str
    test_set: str
    metric: str
    verdict: str
    difference: float | None
    interval: tuple[float, float] | None
    n_seeds: tuple[int, int]
    d_paper: float | None
    seeds_needed: int | None
    seeds_note: str
    seeds_needed_relative: int | None = None
    not_run: tuple[str, ...] = ()
    comparison: Comparison | None = None
    note: str = ""


def check_claim(better: RunErrors | None, worse: RunErrors | None, *, d_paper: float | None = None,
                paper_worse: float | None = None, metric: str = "mae", paired: bool = True, names: tuple[str, str] = ("", ""),
                test_set: str = "", level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0,
                resample: str = "auto") -> ClaimCheck:
    """Check "better beats worse" (lower `metric`). `better`/`worse` are the loaded runs, None for an
    experiment that has not been run (then the verdict is "not run"; `names` give their names).
    d_paper: the paper's better - worse; paper_worse: the paper's value for the worse row (for
    seeds_needed_relative). See compare() for paired and seeds_needed() for the seed count."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    name_b = better.experiment if better is not None else names[0]
    name_w = worse.experiment if worse is not None else names[1]
    test_set = test_set or (better.test_set if better is not None else worse.test_set if worse is not None else "")
    not_run = tuple(n for n, r in ((name_b, better), (name_w, worse)) if r is None)
    if not_run:
        return ClaimCheck(name_b, name_w, test_set, metric, "not run", None, None,
                          (better.n_seeds if better else 0, worse.n_seeds if worse else 0), d_paper, None,
                          "not run", None, not_run, None, f"no results for {', '.join(not_run)}")
    c = compare(better, worse, paired=paired, level=level, resamples=resamples, seed=seed, resample=resample)
    interval = c.interval[metric] if c.interval is not None else None
    sd, test_se = c.seed_sd[metric], c.test_se[metric]
    n, why = seeds_needed(d_paper, sd, test_se, min(c.n_units), level=level)
    n_rel = None
    if d_paper is not None and paper_worse:
        n_rel, _ = seeds_needed(d_paper / paper_worse * c.mean[1][metric], sd, test_se, min(c.n_units), level=level)
    return ClaimCheck(c.a, c.b, c.test_set, metric, verdict(interval), c.difference[metric], interval, c.n_seeds, d_paper,
                      n, why, n_rel, (), c, c.note)


# --------------------------------------------------------------------------------------------
# Orderings (e.g. the asymmetry stage's fitted widths yaw/pitch/roll)


@dataclass(frozen=True)
class OrderingCheck:
    """An ordering "order[0] > order[1] > ..." of per-seed values: per adjacent pair the mean
    difference over seeds with a t interval (None with one seed), and an overall verdict:
    supported when every pair is resolved in the claimed direction, contradicted when any pair is
    resolved against it, else not resolved (also with one seed). observed: the order of the means."""

    order: tuple[str, ...]
    observed: tuple[str, ...]
    means: dict
    pairs: tuple  # (larger, smaller, mean difference, interval or None, verdict)
    verdict: str
    n_seeds: int
    note: str = ""


def check_ordering(values: Mapping[str, Sequence[float]], order: Sequence[str], *, level: float = LEVEL) -> OrderingCheck:
    """Check that values[order[0]] > values[order[1]] > ... (e.g. the fitted similarity widths,
    widest first), each name given one value per seed (the same seeds for all, paired by position)."""
    order = tuple(order)
    missing = [k for k in order if k not in values]
    if missing:
        raise DataError(f"ordering: no values for {', '.join(missing)}")
    arr = {k: np.asarray(values[k], dtype=np.float64).ravel() for k in order}
    n = {len(v) for v in arr.values()}
    if len(n) != 1 or 0 in n:
        raise DataError(f"ordering: every name needs the same number of seeds (>= 1), got {[len(v) for v in arr.values()]}")
    n_seeds = n.pop()
    means = {k: float(v.mean()) for k, v in arr.items()}
    pairs = []
    for hi, lo in zip(order[:-1], order[1:]):
        d = arr[hi] - arr[lo]  # claimed positive
        if n_seeds < 2:
            pairs.append((hi, lo, float(d.mean()), None, "not resolved"))
            continue
        se = d.std(ddof=1) / math.sqrt(n_seeds)
        t = stats.t.ppf((1 + level) / 2, n_seeds - 1)
        iv = (float(d.mean() - t * se), float(d.mean() + t * se))
        pairs.append((hi, lo, float(d.mean()), iv, verdict((-iv[1], -iv[0]))))  # "hi beats lo" = hi - lo > 0
    verdicts = {p[4] for p in pairs}
    overall = "contradicted" if "contradicted" in verdicts else "supported" if verdicts == {"supported"} else "not resolved"
    observed = tuple(sorted(order, key=lambda k: -means[k]))
    return OrderingCheck(order, observed, means, tuple(pairs), overall, n_seeds, ONE_SEED if n_seeds < 2 else "")
