"""Download stage: put every dataset of `params.yaml: data.sources` under data/raw/.

    python -m pipeline.download

Each dataset (300w_lp, aflw2000, biwi, biwi_npz) comes from
- `synthetic`: the built-in renderer (pipeline.synthetic) writing the real on-disk format;
- an http(s) URL of the official archive: downloaded to cache/downloads/ (resumable, checked
  against `data.sha256.<dataset>` when given) and unpacked safely into data/raw/<dataset>/;
- a local archive: unpacked the same way;
- a local folder that is already unpacked: read in place, never copied;
- null: not used.
data/raw/sources.json records where each dataset came from and where it now lives.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline import archives
from pipeline.atomic import atomic_dir
from pipeline.errors import ConfigError, DataError, cli
from pipeline.params import load_params, section
from pipeline.paths import CACHE, RAW

DATASETS = ("300w_lp", "aflw2000", "biwi", "biwi_npz")
SYNTHETIC_FOLDERS = {"300w_lp": "300W_LP", "aflw2000": "AFLW2000", "biwi": "hpdb"}  # what the renderer writes
SOURCES_FILE = "sources.json"


def check_sources(data: dict) -> dict:
    sources = data.get("sources")
    if not isinstance(sources, dict):
        raise ConfigError("params.yaml data.sources: give a mapping dataset -> synthetic | URL | local path | null")
    unknown = set(sources) - set(DATASETS)
    if unknown:
        raise ConfigError(f"params.yaml data.sources: unknown dataset(s) {', '.join(sorted(unknown))}; known: {', '.join(DATASETS)}")
    if sources.get("biwi_npz") == "synthetic":
        raise ConfigError("params.yaml data.sources.biwi_npz: the built-in renderer writes raw BIWI (biwi), not FSA-Net's .npz; give a path or null")
    used = {k: v for k, v in sources.items() if v is not None}
    if not used:
        raise ConfigError("params.yaml data.sources: every dataset is null; set at least one (e.g. 300w_lp: synthetic)")
    return used


def synthetic_config(data: dict) -> dict:
    from pipeline import synthetic

    given = data.get("synthetic") or {}
    unknown = set(given) - set(synthetic.DEFAULTS)
    if unknown:
        raise ConfigError(f"params.yaml data.synthetic: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(synthetic.DEFAULTS)}")
    return {**synthetic.DEFAULTS, **given}


def download(data: dict, raw: Path = RAW, downloads: Path = CACHE / "downloads") -> dict:
    sources = check_sources(data)
    checksums = data.get("sha256") or {}
    record = {}
    with atomic_dir(raw) as out:
        synth = [k for k, v in sources.items() if v == "synthetic"]
        if synth:
            from pipeline import synthetic

            cfg = synthetic_config(data)
            counts = synthetic.generate(out / ".synthetic", cfg)
            for k in synth:
                (out / ".synthetic" / SYNTHETIC_FOLDERS[k]).rename(out / k)
                record[k] = {"source": "synthetic", "path": k, "config": cfg, "rendered": counts}
            shutil.rmtree(out / ".synthetic")
        for k, location in sources.items():
            if location == "synthetic":
                continue
            fetched = archives.fetch(str(location), downloads, checksums.get(k))
            if fetched.is_dir():
                record[k] = {"source": str(location), "path": str(archives.content_root(fetched).resolve())}
            else:
                archives.unpack(fetched, out / k)
                record[k] = {"source": str(location), "path": k, "sha256": archives.sha256_file(fetched)}
        (out / SOURCES_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def dataset_folders(raw: Path = RAW) -> dict[str, tuple[Path, str]]:
    """{dataset: (folder holding it, source)} as the download stage left them."""
    path = raw / SOURCES_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro download` first")
    record = json.loads(path.read_text())
    return {k: (raw / v["path"] if not Path(v["path"]).is_absolute() else Path(v["path"]), v["source"]) for k, v in record.items()}


@cli
def main():
    for k, v in download(section(load_params(), "data")).items():
        print(f"{k}: {v['source']} -> {v['path']}")


if __name__ == "__main__":
    main()
