"""data/raw/ as the download stage leaves it: one folder per dataset (or a path to a folder read
in place) and sources.json saying where each came from."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.paths import RAW

SOURCES_FILE = "sources.json"


def dataset_folders(raw: Path = RAW) -> dict[str, tuple[Path, str]]:
    """{dataset: (folder holding it, source)} as the download stage left them."""
    path = raw / SOURCES_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro download` first")
    record = json.loads(path.read_text())
    return {k: (raw / v["path"] if not Path(v["path"]).is_absolute() else Path(v["path"]), v["source"]) for k, v in record.items()}
