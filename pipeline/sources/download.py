"""Getting every dataset of params.yaml `data.sources` under data/raw/.

Each dataset (300w_lp, aflw2000, biwi, biwi_npz) comes from
- `synthetic`: the built-in renderer (pipeline.sources.synthetic) writing the real on-disk format;
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

from pipeline.config.params import Data
from pipeline.core.atomic import atomic_dir
from pipeline.core.paths import CACHE, RAW
from pipeline.data.raw import SOURCES_FILE
from pipeline.sources import archives

SYNTHETIC_FOLDERS = {"300w_lp": "300W_LP", "aflw2000": "AFLW2000", "biwi": "hpdb"}  # what the renderer writes


def download(data: Data, raw: Path = RAW, downloads: Path = CACHE / "downloads") -> dict:
    sources = data.used()
    checksums = data.sha256
    record = {}
    with atomic_dir(raw) as out:
        synth = [k for k, v in sources.items() if v == "synthetic"]
        if synth:
            from pipeline.sources import synthetic

            counts = synthetic.generate(out / ".synthetic", data.synthetic)
            for k in synth:
                (out / ".synthetic" / SYNTHETIC_FOLDERS[k]).rename(out / k)
                record[k] = {"source": "synthetic", "path": k, "config": data.synthetic.model_dump(mode="json"), "rendered": counts}
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
