"""The table engine of the report: the context every section gets, how an experiment is
described, and comparison tables that put paper rows, harness rows and the mean-pose baseline
together with a note on the data each row ran on."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.experiment import Experiment
from pipeline.core.angles import ANGLES
from pipeline.reporting.document import Document
from pipeline.reporting.paper import fmt_paper, paper_notes, paper_table
from pipeline.reporting.sources import Sources

KEYS = (*ANGLES, "mae")
NAMES = {"yaw": "Yaw", "pitch": "Pitch", "roll": "Roll", "mae": "MAE"}
DISPLAY = {"aflw2000": "AFLW2000", "biwi": "BIWI"}
SWEEP_COMMAND = {"alpha_beta": "python sweeps/alpha_beta.py", "gamma": "python sweeps/gamma.py"}


def fmt(v, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def percent(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def run_command(name: str) -> str:
    return f"dvc exp run -S 'run=[{name}]'"


@dataclass
class Context:
    """Everything a section needs: the experiments' configs, the layout (which experiments stand in
    which section, layout.yaml), the paper values, the sources, the figures folder and the
    document being written."""

    configs: dict[str, Experiment]
    sweeps: dict  # params.yaml `sweeps`
    layout: dict
    paper: dict
    src: Sources
    figures: Path
    doc: Document
    placed: set = field(default_factory=set)  # experiments some section has shown

    def metrics(self, name: str, family: str) -> tuple[str | None, dict | None]:
        """(test set, its metrics) of an experiment for a dataset family ("biwi" matches
        biwi_frames and biwi_npz too), or (test set or None, None) when not measured."""
        config = self.configs.get(name)
        if config is None:
            return None, None
        test_set = test_set_for(config, family)
        m = self.src.metrics(name) or {}
        return test_set, m.get(test_set) if test_set else None

    def interval(self, name: str, test_set: str | None, metric: str = "mae") -> tuple[float, float] | None:
        """The 95% interval of an experiment's `metric` (yaw, pitch, roll or mae) on a test set
        (None with one seed)."""
        summary = self.src.summary(name, test_set) if test_set and len(self.src.seeds(name)) > 1 else None
        return summary.interval[metric] if summary is not None and summary.interval else None

    def figure(self, name: str) -> Path:
        return self.figures / name

    def show(self, path: Path | None, caption: str, width_mm: float = 200) -> None:
        """Add a drawn figure (None: nothing was drawn)."""
        if path is not None:
            self.doc.image(path, caption, width_mm)


def test_set_for(config: Experiment, family: str) -> str | None:
    tests = config.protocol.test
    return family if family in tests else next((t for t in tests if t.startswith(family + "_")), None)


def describe(name: str, config: Experiment | None) -> str:
    if config is None:
        return f"{name} (not defined in params.yaml)"
    parts = [config.model]
    hp = config.hparams
    if getattr(hp, "backbone", None):
        parts.append(hp.backbone + (" pretrained" if getattr(hp, "pretrained", False) else ""))
    if config.model == "bernoulli":
        parts += ["AT" if hp.attention else "no AT", f"gamma {hp.gamma:g}"]
    w, h = config.input_size
    if getattr(hp, "frozen_stride", 0):
        parts.append(f"frozen to stride {hp.frozen_stride}")
    parts += [f"{w} px" if w == h else f"{w}x{h} px", f"{config.epochs} ep"]
    if config.ema is not None:
        parts.append(f"weight average {config.ema:g}")
    if config.test_flip:
        parts.append("flip test")
    if config.pitch_view is not None:
        parts.append(f"pitch from a {config.pitch_view} px view")
    return f"{name} ({', '.join(parts)})"


def source_label(source: str | None) -> str:
    return "synthetic: built-in renderer" if source == "synthetic" else f"real, from {source}"


def header(families: tuple, metrics: tuple) -> list[str]:
    if len(families) == 1:
        return [*(NAMES[m] for m in metrics), "MAE 95% interval"]
    return [c for f in families for c in (*(f"{DISPLAY.get(f, f)} {NAMES[m]}" for m in metrics), f"{DISPLAY.get(f, f)} MAE 95% interval")]


def interval_cell(ctx: "Context", name: str, test_set: str | None, m: dict | None) -> str:
    """'[11.20, 12.41], 5 seeds', or '1 seed, no interval' (the mean is in the MAE column)."""
    if not m or not test_set:
        return ""
    if len(m.get("seeds", [0])) < 2:
        return "1 seed, no interval"
    summary = ctx.src.summary(name, test_set)
    if summary is None or summary.interval is None:
        return f"{len(m['seeds'])} seeds, no predictions to bound"
    lo, hi = summary.interval["mae"]
    return f"[{lo:.2f}, {hi:.2f}], {summary.n_seeds} seeds"


def run_cell(m: dict) -> str:
    """The MLflow evaluate run of a row: one id, or the first and how many more (one per seed)."""
    ids = m.get("run_ids") or [m.get("run_id", "-")]
    return ids[0] if len(ids) == 1 else f"{ids[0]} and {len(ids) - 1} more (one per seed; tag experiment)"


def comparison(ctx: Context, key: str, title: str, families: tuple, experiments: tuple, paper_key: str | None = None,
               metrics: tuple = KEYS, extra_label=None) -> None:
    """A section: heading, table (paper rows, harness rows, baselines), data note, paper notes."""
    doc = ctx.doc
    doc.heading(title)
    rows, kinds = [], []
    paper = paper_table(ctx.paper, paper_key) if paper_key else None
    width = len(families) * (len(metrics) + 1)
    if paper:
        source = f"paper: {paper['paper']} {paper['label']}"
        for method, v in paper["values"].items():
            rows.append([method, *(c for f in families for c in (*(fmt_paper(v.get((f, m))) for m in metrics), "")), source,
                         "printed in the paper"])
            kinds.append("paper")
    protocols = {}
    for name in experiments:
        ctx.placed.add(name)
        config = ctx.configs.get(name)
        addition = ctx.layout.get("additions", {}).get(name)
        label = describe(name, config) + (f" [{addition}]" if addition else "") + (extra_label(name) if extra_label else "")
        measured = {f: ctx.metrics(name, f) for f in families}
        if config is None:
            rows.append([label, "not run", *[""] * (width - 1), "not defined", f"add experiments.{name} to params.yaml"])
            kinds.append("missing")
            continue
        if not any(m for _, m in measured.values()):
            rows.append([label, "not run", *[""] * (width - 1), "not run", run_command(name)])
            kinds.append("missing")
            continue
        cells = [c for ts, m in measured.values()
                 for c in (*(fmt(m.get(k)) if m else "not run" for k in metrics), interval_cell(ctx, name, ts, m))]
        run_id = run_cell(next(m for _, m in measured.values() if m))
        rows.append([label, *cells, "harness", run_id])
        kinds.append("ours")
        protocols.setdefault(config.protocol.name, (config, {ts: m for ts, m in measured.values() if m}))
    rows_b, kinds_b = baseline_rows(ctx, protocols, families, metrics)
    rows += rows_b
    kinds += kinds_b
    groups = [("", 1), *((DISPLAY.get(f, f), len(metrics) + 1) for f in families), ("", 2)] if len(families) > 1 else None
    table = doc.table(["Method", *header(families, metrics), "Source", "MLflow run / command to run it"], rows, key=key,
                      widths=[64, *(w for _ in families for w in ([14 if len(families) == 1 else 11] * len(metrics) + [26])), 40, 52],
                      kinds=kinds, note=data_note(ctx, protocols, paper), groups=groups,
                      short=["Method", *(c for _ in families for c in (*(NAMES[m] for m in metrics), "95% interval")), "Source",
                             "MLflow run / command to run it"])
    if paper_key:
        notes = paper_notes(ctx.paper, paper_key)
        if notes:
            doc.text("Notes on the paper's numbers: " + " ".join(f"({i + 1}) {n}" for i, n in enumerate(notes)))
    return table


def baseline_rows(ctx: Context, protocols: dict, families: tuple, metrics: tuple):
    baseline = ctx.src.json("baseline", "metrics.json") or {}
    rows, kinds = [], []
    for name, (config, _) in protocols.items():
        tests = [test_set_for(config, f) for f in families]
        found = [(baseline.get(name) or {}).get(t) if t else None for t in tests]
        if any(found):
            rows.append([f"predict the training mean pose (protocol {name})",
                         *(c for m in found for c in (*(fmt(m.get(k)) if m else "-" for k in metrics), "")), "harness baseline", "-"])
            kinds.append("baseline")
    return rows, kinds


def data_note(ctx: Context, protocols: dict, paper: dict | None) -> str:
    parts = []
    for name, (config, measured) in protocols.items():
        proto = config.protocol
        train_meta = ctx.src.meta(proto.train) or {}
        tests = "; ".join(f"{ts}: {m.get('n', '?')} samples scored ({m.get('n_filtered', '?')} removed by the +-99 deg filter), "
                          f"{source_label(m.get('source'))}" for ts, m in measured.items())
        split = next((m["split"] for m in measured.values() if m.get("split")), None)
        split_text = (f"; split by {split.get('by', 'sequence')}: train {', '.join(split['train'])} / test {', '.join(split['test'])}"
                      if split else "")
        parts.append(f"Harness, protocol {name}: trained on {proto.train} ({train_meta.get('n', '?')} samples, "
                     f"{source_label(train_meta.get('source'))}){split_text}; tested on {tests}.")
    if protocols:
        parts.append("Harness rows: the mean over the seeds each experiment was trained with; the 95% interval of the MAE "
                     "accounts for seed-to-seed and test-set noise (hierarchical bootstrap over seeds and test samples, "
                     "pipeline/analysis/statistics.py); each seed's values are in the appendix.")
    if paper:
        parts.append(f"Paper rows: {paper['data']}.")
    return " ".join(parts)

