"""Download stage: put the raw datasets under data/raw/ in their on-disk formats.

    python -m pipeline.download

Source `synthetic` (the default) renders 300W-LP-, AFLW2000- and BIWI-style folders with the
built-in head renderer (pipeline.synthetic), so the pipeline runs without any download.
"""
from __future__ import annotations

from pipeline.atomic import write_json
from pipeline.errors import ConfigError, cli
from pipeline.params import load_params, section
from pipeline.paths import RAW

SOURCES = ("synthetic",)


@cli
def main():
    data = section(load_params(), "data")
    source = data.get("source")
    if source not in SOURCES:
        raise ConfigError(f"params.yaml data.source: unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    from pipeline import synthetic

    cfg = {**synthetic.DEFAULTS, **(data.get("synthetic") or {})}
    unknown = set(data.get("synthetic") or {}) - set(synthetic.DEFAULTS)
    if unknown:
        raise ConfigError(f"params.yaml data.synthetic: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(synthetic.DEFAULTS)}")
    counts = synthetic.generate(RAW, cfg)
    write_json(RAW / "source.json", {"source": source, "config": cfg, "counts": counts})
    print(f"synthetic data written to {RAW}: {counts}")


if __name__ == "__main__":
    main()
