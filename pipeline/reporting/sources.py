"""The files the report reads: results/<experiment>/ (metrics, criteria, robustness, predictions),
results/sweeps/<study>/results.csv and data/crops/<dataset>/meta.json. Only this module opens
them, so tests can point the report at fabricated results."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.analysis import statistics
from pipeline.core.errors import DataError
from pipeline.core.paths import CROPS, RESULTS


KEYS = ("yaw", "pitch", "roll", "mae")


@dataclass
class Sources:
    """The folders the report reads (defaults: the repository's results/ and data/crops/).

    An experiment's runs are results/<name>/seed-<k>/ (one per seed of params.yaml `seeds`);
    `metrics` averages them per test set, `summary` adds the 95% interval over seeds and test
    samples (pipeline.analysis.statistics), `runs` gives each run's own files."""

    results: Path = RESULTS
    crops: Path = CROPS
    _summaries: dict = field(default_factory=dict, repr=False)

    def json(self, *parts: str) -> dict | None:
        path = self.results.joinpath(*parts)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            raise DataError(f"{path}: not valid JSON; re-run the stage that writes it (dvc repro)") from None

    def seeds(self, name: str) -> list[int]:
        """The seeds of experiment `name` that have been evaluated (their metrics.json exists)."""
        return [k for k, folder in statistics.seed_folders(self.results, name).items() if (folder / "metrics.json").is_file()]

    def runs(self, name: str, file: str) -> dict[int, dict]:
        """{seed: that run's JSON `file`} (metrics.json, criteria.json, robustness.json)."""
        found = {k: self.json(name, f"seed-{k}", file) for k in statistics.seed_folders(self.results, name)}
        return {k: v for k, v in found.items() if v is not None}

    def metrics(self, name: str) -> dict | None:
        """{test set: metrics} averaged over the experiment's seeds: yaw, pitch, roll, mae are the
        means, the rest (n, source, split...) is the first seed's; `seeds` lists them and `run_ids`
        their MLflow evaluate runs (`run_id` is the first one's)."""
        runs = self.runs(name, "metrics.json")
        if not runs:
            return None
        out = {}
        for test_set in next(iter(runs.values())):
            per_seed = {k: m[test_set] for k, m in runs.items() if test_set in m}
            first = next(iter(per_seed.values()))
            out[test_set] = {**first, **{k: sum(m[k] for m in per_seed.values()) / len(per_seed) for k in KEYS},
                             "seeds": list(per_seed), "run_ids": [m.get("run_id", "-") for m in per_seed.values()],
                             "per_seed": {k: {key: m[key] for key in KEYS} for k, m in per_seed.items()}}
        return out

    def summary(self, name: str, test_set: str) -> statistics.Summary | None:
        """Mean and 95% interval over seeds and test samples, from the runs' predictions (None when
        the experiment has none on this test set)."""
        key = (name, test_set)
        if key not in self._summaries:
            run = statistics.load_run_errors(self.results, name, test_set)
            self._summaries[key] = statistics.summarize(run) if run is not None else None
        return self._summaries[key]

    def criteria(self, name: str) -> dict | None:
        """The first seed's Criteria II and III (the curves of one run)."""
        runs = self.runs(name, "criteria.json")
        return next(iter(runs.values())) if runs else None

    def robustness(self, name: str) -> dict[int, dict]:
        return self.runs(name, "robustness.json")

    def model(self, name: str) -> Path | None:
        """The first seed's checkpoint, if trained."""
        paths = [folder / "model.pt" for folder in statistics.seed_folders(self.results, name).values()]
        return next((p for p in paths if p.is_file()), None)

    def run_model(self, name: str, seed: int) -> Path | None:
        """The checkpoint of one seed's run, if trained."""
        folder = statistics.seed_folders(self.results, name).get(seed)
        return folder / "model.pt" if folder is not None and (folder / "model.pt").is_file() else None

    def train_logs(self, name: str) -> dict[int, Path]:
        return {k: folder / "train_log.csv" for k, folder in statistics.seed_folders(self.results, name).items()
                if (folder / "train_log.csv").is_file()}

    def sweep(self, study: str) -> pd.DataFrame | None:
        path = self.results / "sweeps" / study / "results.csv"
        return pd.read_csv(path) if path.is_file() and path.stat().st_size else None

    def meta(self, dataset: str) -> dict | None:
        path = self.crops / dataset / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def predictions(self, name: str, test_set: str) -> pd.DataFrame | None:
        """The first seed's per-sample predictions on `test_set`."""
        for folder in statistics.seed_folders(self.results, name).values():
            path = folder / "predictions" / f"{test_set}.csv"
            if path.is_file():
                return pd.read_csv(path, dtype={"sample_id": str, "sequence": str})
        return None
