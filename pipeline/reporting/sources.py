"""The files the report reads: results/<experiment>/ (metrics, criteria, robustness, predictions),
results/sweeps/<study>/results.csv and data/crops/<dataset>/meta.json. Only this module opens
them, so tests can point the report at fabricated results."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.paths import CROPS, RESULTS


@dataclass
class Sources:
    """The folders the report reads (defaults: the repository's results/ and data/crops/)."""

    results: Path = RESULTS
    crops: Path = CROPS

    def json(self, *parts: str) -> dict | None:
        path = self.results.joinpath(*parts)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            raise DataError(f"{path}: not valid JSON; re-run the stage that writes it (dvc repro)") from None

    def metrics(self, name: str) -> dict | None:
        return self.json(name, "metrics.json")

    def criteria(self, name: str) -> dict | None:
        return self.json(name, "criteria.json")

    def robustness(self, name: str) -> dict | None:
        return self.json(name, "robustness.json")

    def sweep(self, study: str) -> pd.DataFrame | None:
        path = self.results / "sweeps" / study / "results.csv"
        return pd.read_csv(path) if path.is_file() and path.stat().st_size else None

    def meta(self, dataset: str) -> dict | None:
        path = self.crops / dataset / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def predictions(self, name: str, test_set: str) -> pd.DataFrame | None:
        path = self.results / name / "predictions" / f"{test_set}.csv"
        return pd.read_csv(path, dtype={"sample_id": str, "sequence": str}) if path.is_file() else None

