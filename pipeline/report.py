"""Report stage: reports/report.md and reports/report.pdf (figures in reports/figures/), the
papers' numbers beside what this harness measured.

    python -m pipeline.report

Every row says where its numbers come from: a paper (typed from the papers' text into
pipeline/paper_values.yaml, shaded in the PDF) or this harness (read from results/, with the
MLflow run id and the data it ran on). An experiment without results says "not run" and gives
the command that runs it; no row of a section's layout is ever left out.

What it reads: results/<experiment>/{metrics,criteria,robustness}.json, predictions/*.csv,
train_log.csv and model.pt (Grad-CAM); results/baseline/metrics.json; results/asymmetry/fit.json
and similarity.png; results/sweeps/<study>/results.csv and curves.png; data/crops/<dataset>/
(meta.json for the Data section, the crops for the pictures). `build` takes those folders as
arguments so tests can point it at fabricated results.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import yaml

from pipeline import figures, visuals
from pipeline.angles import ANGLES
from pipeline.document import Document
from pipeline.errors import DataError, HarnessError, cli
from pipeline.params import experiment_config, load_params
from pipeline.paths import CROPS, REPORTS, RESULTS
from pipeline.tracking import git_commit

PAPER_VALUES = Path(__file__).parent / "paper_values.yaml"
SLACK = 0.01  # printed MAE vs mean of printed angles: differences within rounding plus this are not flagged
KEYS = (*ANGLES, "mae")
NAMES = {"yaw": "Yaw", "pitch": "Pitch", "roll": "Roll", "mae": "MAE"}
DISPLAY = {"aflw2000": "AFLW2000", "biwi": "BIWI"}

# Which harness experiments stand in which section (names under `experiments:` in params.yaml)
P1_PEERS = ("dadl", "hopenet_a1", "hopenet_a2", "sixdrepnet", "bernoulli_p1")
P2_ROWS = ("dadl_p2", "bernoulli_at_nbg", "bernoulli_nbg")
BACKBONES = ("dadl", "dadl_resnet50", "dadl_resnet152", "dadl_mobilenet_v2")
ABLATION = ("wo", "hard_label", "gsoft", "dadl", "dadl_asym")
ADDITIONS = {"dadl_asym": "harness addition, not in the paper: per-angle sigmas from the asymmetry fit"}
BERNOULLI = ("bernoulli_at_nbg", "bernoulli_nbg", "bernoulli_at_bg", "bernoulli_bg")
GAMMA = ("bernoulli_at_nbg_g2", "bernoulli_at_nbg", "bernoulli_at_nbg_g6")
SIZES = ("bernoulli_at_nbg", "bernoulli_at_nbg_12_12", "bernoulli_at_nbg_8_16")
GRADCAM = ("dadl", "hopenet_a1", "hopenet_a2")
PICTURES = ("dadl", "hopenet_a1", "sixdrepnet", "dadl_p2", "bernoulli_at_nbg", "bernoulli_at_bg", "bernoulli_p1")
SWEEP_COMMAND = {"alpha_beta": "python sweeps/alpha_beta.py", "gamma": "python sweeps/gamma.py"}


def fmt(v, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def fmt_paper(v) -> str:
    """A paper's number as typed (shortest form: 4.50 typed shows as 4.5)."""
    return "-" if v is None else f"{v:g}"


def percent(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def run_command(name: str) -> str:
    return f"dvc exp run -S 'run=[{name}]'"


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


@dataclass
class Context:
    """Everything a section needs: the experiments' configs, the paper values, the sources, the
    figures folder and the document being written."""

    configs: dict
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

    def figure(self, name: str) -> Path:
        return self.figures / name

    def show(self, path: Path | None, caption: str, width_mm: float = 200) -> None:
        """Add a drawn figure (None: nothing was drawn)."""
        if path is not None:
            self.doc.image(path, caption, width_mm)


def test_set_for(config: dict, family: str) -> str | None:
    tests = config["protocol"]["test"]
    return family if family in tests else next((t for t in tests if t.startswith(family + "_")), None)


def describe(name: str, config: dict | None) -> str:
    if config is None:
        return f"{name} (not defined in params.yaml)"
    parts = [config["model"]]
    if config.get("backbone"):
        parts.append(config["backbone"] + (" pretrained" if config.get("pretrained") else ""))
    if config["model"] == "bernoulli":
        parts += ["AT" if config.get("attention") else "no AT", f"gamma {config.get('gamma'):g}"]
    size = config["input_size"]
    parts += [f"{size} px" if isinstance(size, (int, float)) else f"{size[0]}x{size[1]} px", f"{config['epochs']} ep"]
    return f"{name} ({', '.join(parts)})"


def source_label(source: str | None) -> str:
    return "synthetic: built-in renderer" if source == "synthetic" else f"real, from {source}"


# ---------------------------------------------------------------- paper values


def paper_table(paper: dict, key: str) -> dict:
    """A table of paper_values.yaml with its rows as {method: {(family, metric): value}}."""
    table = paper[key]
    order = [(family, metric) for family, metrics in table["columns"].items() for metric in metrics]
    rows = {}
    for method, values in table["rows"].items():
        if len(values) != len(order):
            raise DataError(f"{PAPER_VALUES}: {key}.{method} has {len(values)} numbers, the columns need {len(order)}")
        rows[method] = dict(zip(order, values))
    return {**table, "values": rows}


def _half_unit(v: float) -> float:
    """Half a unit of the last printed digit (from the shortest repr, so 4.50 typed counts as 4.5)."""
    text = repr(float(v))
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0)


def paper_notes(paper: dict, key: str) -> list[str]:
    """Typed notes of a table plus the ones computed here: printed MAE versus the mean of the
    printed angles (beyond what rounding explains), and rows printed differently elsewhere."""
    table = paper_table(paper, key)
    notes = list(table.get("notes", []))
    for family in table["columns"]:
        for method, v in table["values"].items():
            angles = [v.get((family, a)) for a in ANGLES]
            mae = v.get((family, "mae"))
            if mae is None or None in angles:
                continue
            mean = sum(angles) / 3
            if abs(mean - mae) > _half_unit(mae) + sum(_half_unit(a) for a in angles) / 3 + SLACK:
                notes.append(f"{method}: the printed MAE {mae:g} is not the mean of the printed angles ({mean:.2f}).")
    other_key = table.get("compare_with")
    if other_key:
        other = paper_table(paper, other_key)
        for method, v in table["values"].items():
            w = other["values"].get(method)
            if w is None:
                continue
            differ = [k for k in v if k in w and v[k] != w[k]]
            if differ:
                mine = ", ".join(f"{k[1]} {v[k]:g}" for k in differ)
                theirs = ", ".join(f"{k[1]} {w[k]:g}" for k in differ)
                notes.append(f"{method}: {table['paper']} {table['label']} prints {mine}; {other['paper']} {other['label']} prints {theirs}. "
                             "Both are shown as printed.")
    return notes


# ---------------------------------------------------------------- comparison tables


def header(families: tuple, metrics: tuple) -> list[str]:
    if len(families) == 1:
        return [NAMES[m] for m in metrics]
    return [f"{DISPLAY.get(f, f)} {NAMES[m]}" for f in families for m in metrics]


def comparison(ctx: Context, key: str, title: str, families: tuple, experiments: tuple, paper_key: str | None = None,
               metrics: tuple = KEYS, extra_label=None) -> None:
    """A section: heading, table (paper rows, harness rows, baselines), data note, paper notes."""
    doc = ctx.doc
    doc.heading(title)
    rows, kinds = [], []
    paper = paper_table(ctx.paper, paper_key) if paper_key else None
    if paper:
        source = f"paper: {paper['paper']} {paper['label']}"
        for method, v in paper["values"].items():
            rows.append([method, *(fmt_paper(v.get((f, m))) for f in families for m in metrics), source, "printed in the paper"])
            kinds.append("paper")
    protocols = {}
    for name in experiments:
        ctx.placed.add(name)
        config = ctx.configs.get(name)
        label = describe(name, config) + (f" [{ADDITIONS[name]}]" if name in ADDITIONS else "") + (extra_label(name) if extra_label else "")
        measured = {f: ctx.metrics(name, f) for f in families}
        if config is None:
            rows.append([label, "not run", *[""] * (len(families) * len(metrics) - 1), "not defined",
                         f"add experiments.{name} to params.yaml"])
            kinds.append("missing")
            continue
        if not any(m for _, m in measured.values()):
            rows.append([label, "not run", *[""] * (len(families) * len(metrics) - 1), "not run", run_command(name)])
            kinds.append("missing")
            continue
        cells = [fmt(m.get(k)) if m else "not run" for _, m in measured.values() for k in metrics]
        run_id = next(m.get("run_id", "-") for _, m in measured.values() if m)
        rows.append([label, *cells, "harness", run_id])
        kinds.append("ours")
        protocols.setdefault(config["protocol"]["name"], (config, {ts: m for ts, m in measured.values() if m}))
    rows_b, kinds_b = baseline_rows(ctx, protocols, families, metrics)
    rows += rows_b
    kinds += kinds_b
    groups = [("", 1), *((DISPLAY.get(f, f), len(metrics)) for f in families), ("", 2)] if len(families) > 1 else None
    table = doc.table(["Method", *header(families, metrics), "Source", "MLflow run / command to run it"], rows, key=key,
                      widths=[70, *[16 if len(families) == 1 else 13] * (len(families) * len(metrics)), 48, 58],
                      kinds=kinds, note=data_note(ctx, protocols, paper), groups=groups,
                      short=["Method", *(NAMES[m] for _ in families for m in metrics), "Source", "MLflow run / command to run it"])
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
                         *(fmt(m.get(k)) if m else "-" for m in found for k in metrics), "harness baseline", "-"])
            kinds.append("baseline")
    return rows, kinds


def data_note(ctx: Context, protocols: dict, paper: dict | None) -> str:
    parts = []
    for name, (config, measured) in protocols.items():
        proto = config["protocol"]
        train_meta = ctx.src.meta(proto["train"]) or {}
        tests = "; ".join(f"{ts}: {m.get('n', '?')} samples scored ({m.get('n_filtered', '?')} removed by the +-99 deg filter), "
                          f"{source_label(m.get('source'))}" for ts, m in measured.items())
        split = next((m["split"] for m in measured.values() if m.get("split")), None)
        split_text = (f"; split by {split.get('by', 'sequence')}: train {', '.join(split['train'])} / test {', '.join(split['test'])}"
                      if split else "")
        parts.append(f"Harness, protocol {name}: trained on {proto['train']} ({train_meta.get('n', '?')} samples, "
                     f"{source_label(train_meta.get('source'))}){split_text}; tested on {tests}.")
    if paper:
        parts.append(f"Paper rows: {paper['data']}.")
    return " ".join(parts)


# ---------------------------------------------------------------- sections


def data_section(ctx: Context) -> None:
    ctx.doc.heading("Data")
    rows, notes = [], []
    for folder in sorted(p for p in ctx.src.crops.iterdir() if p.is_dir()) if ctx.src.crops.is_dir() else []:
        meta = ctx.src.meta(folder.name)
        if meta is None:
            continue
        source = meta.get("source", "unknown")
        if source == "synthetic":
            shown = "synthetic (built-in renderer)"
        else:
            notes.append(f"[{len(notes) + 1}] {folder.name}: {source}")
            shown = f"real, see [{len(notes)}]"
        size = meta.get("store_size")
        rows.append([folder.name, shown, meta.get("n_read", "-"), meta.get("n", "-"), meta.get("n_filtered", "-"), meta.get("rule", "-"),
                     "x".join(map(str, size)) if isinstance(size, list) else size or "-"])
    if not rows:
        ctx.doc.text(f"No crop store found under {ctx.src.crops}: run `dvc repro crop`.")
        return
    ctx.doc.table(["Dataset", "Source", "Samples read", "Kept", "Removed by the +-99 deg filter", "Crop rule", "Stored size (px)"],
                  rows, key="data", widths=[30, 60, 25, 20, 40, 30, 30],
                  note=("Sources: " + "; ".join(notes) + ". " if notes else "") +
                  "Test sets are scored on the kept samples of their protocol's test rows (the n of each table's data note).")


def ablation_figure(ctx: Context) -> None:
    ctx.doc.heading("DADL Fig. 11: per-angle MAE of the ablation rows", 3)
    panels = {}
    for family in ("aflw2000", "biwi"):
        series = {}
        for name in ABLATION:
            _, m = ctx.metrics(name, family)
            if m:
                series[name] = [m[k] for k in KEYS]
        if series:
            panels[DISPLAY[family]] = series
    missing = [n for n in ABLATION if not any(ctx.metrics(n, f)[1] for f in ("aflw2000", "biwi"))]
    if panels:
        path = figures.grouped_bars(panels, [NAMES[k] for k in KEYS], ctx.figure("dadl_fig11_ablation.png"))
        ctx.doc.image(path, "Harness: per-angle MAE of the ablation rows (DADL Fig. 11 shows the paper's only as bars, without numbers).", 180)
    ctx.doc.text("Not run yet: " + "; ".join(f"{n}: `{run_command(n)}`" for n in missing) if missing else "Every ablation row has been run.")


def alpha_beta_section(ctx: Context) -> None:
    from sweeps.figures import heatmap

    ctx.doc.heading("DADL Fig. 12: loss weights alpha x beta")
    best = ctx.paper["dadl_alpha_beta"]["best"]
    ctx.doc.text(f"The paper shows the MAE of every (alpha, beta) only as a figure; its text gives the best cells: alpha = {best['aflw2000'][0]:g}, "
                 f"beta = {best['aflw2000'][1]:g} on AFLW2000 and alpha = {best['biwi'][0]:g}, beta = {best['biwi'][1]:g} on BIWI "
                 "(the main tables use alpha = 2, beta = 1).")
    studies = ["alpha_beta"] + sorted(p.name for p in (ctx.src.results / "sweeps").glob("benchmark_pruning-*") if (p / "results.csv").is_file())
    rows, kinds, images = [], [], []
    for study in studies:
        table = ctx.src.sweep(study)
        if table is None or not len(table):
            rows.append([study, "not run", "", "", "", "", "", SWEEP_COMMAND["alpha_beta"]])
            kinds.append("missing")
            continue
        done = table[table.state == "COMPLETE"]
        for panel in ["val"] + [c[:-4] for c in table.columns if c.endswith("_mae") and c != "val_mae"]:
            col = f"{panel}_mae"
            if not len(done) or done[col].isna().all():
                continue
            row = done.loc[done[col].idxmin()]
            paper_best = best.get(panel)
            rows.append([study, "validation" if panel == "val" else panel, f"{row.alpha:g}", f"{row.beta:g}", fmt(row[col]),
                         f"{len(done)} / {len(table) - len(done)}", f"{paper_best[0]:g}, {paper_best[1]:g}" if paper_best else "-",
                         row.evaluate_run_id if panel != "val" else row.train_run_id])
            kinds.append("ours")
        folder = ctx.figure(f"sweep-{study}")
        folder.mkdir(exist_ok=True)
        path = heatmap(table, folder, SimpleNamespace(grid=("alpha", "beta"), param=lambda k: k))
        caption = ("Harness: MAE per (alpha, beta) cell of the study " + study +
                   (" (the pruning benchmark's run of the same grid, `python sweeps/benchmark_pruning.py`)" if study != "alpha_beta" else "") +
                   "; blank cells were pruned.")
        images.append((path, caption))
    ctx.doc.table(["Study", "Panel", "Best alpha", "Best beta", "MAE", "Trials complete / pruned", "Paper's best (alpha, beta)",
                   "MLflow run / command to run it"], rows, key="dadl_fig12", widths=[45, 25, 18, 18, 16, 30, 35, 62], kinds=kinds,
                  note="Best cell of each panel among COMPLETE trials, by that panel's MAE (the harness ranks trials by validation MAE). "
                       "Test panels use the protocol of the sweep's base experiment (params.yaml sweeps.alpha_beta).")
    for path, caption in images:
        ctx.doc.image(path, caption, 210)


def asymmetry_section(ctx: Context) -> None:
    doc = ctx.doc
    values = ctx.paper["dadl_asymmetry"]
    doc.heading("DADL Figs. 4-5: asymmetric similarity curves and label sigmas")
    fit = ctx.src.json("asymmetry", "fit.json")
    if fit is None:
        doc.text("Not run: `dvc repro asymmetry`.")
        return
    image = ctx.src.results / "asymmetry" / "similarity.png"
    if image.is_file():
        shutil.copy(image, ctx.figure("asymmetry_similarity.png"))
        doc.image(ctx.figure("asymmetry_similarity.png"), "Harness: cosine similarity of LeNet features to the most frontal training images, "
                  "per bin along each angle, with a Gaussian and a left/right Gaussian fitted (DADL Figs. 4-5).")
    paper_fit, sigma = values["similarity_fit"], values["label_sigma"]
    rows = []
    for i, a in enumerate(ANGLES):
        f = fit["fits"][a]
        rows.append([a, fmt(f["sigma"], 1), f"{fmt(f['split']['sigma_left'], 1)} / {fmt(f['split']['sigma_right'], 1)}", f.get("method", "-"),
                     fmt(fit["sigma_bins"][i], 3), f"{paper_fit[a]['mu']:g} / {paper_fit[a]['sigma']:g}", f"{sigma['aflw2000'][i]:g}",
                     f"{sigma['biwi'][i]:g}"])
    doc.table(["Angle", "Harness: fitted width (deg)", "Harness: left / right width (deg)", "Harness: fit", "Harness: label sigma (bins)",
               "Paper: printed fit mu / sigma", "Paper: label sigma, AFLW2000 setting", "Paper: label sigma, BIWI setting"], rows,
              key="asymmetry", widths=[18, 30, 34, 26, 30, 34, 36, 36],
              note=f"Harness: LeNet trained on {fit.get('dataset', '?')} (MLflow run {fit.get('lenet_run_id', '-')}); label sigmas = "
                   f"mean_sigma ({fit.get('mean_sigma', '?')} bins) x fitted width / mean fitted width, used by dadl_asym. "
                   "The paper does not state the unit of its sigmas.")
    doc.text("Notes on the paper's numbers: " + " ".join(f"({i + 1}) {n}" for i, n in enumerate(values.get("notes", []))))


def gradcam_section(ctx: Context) -> None:
    from pipeline.inference import load_checkpoint
    from pipeline.protocols import rows as protocol_rows
    from pipeline.store import load_store

    doc = ctx.doc
    doc.heading("DADL Fig. 10: Grad-CAM of DADL and HopeNet")
    models, missing = {}, []
    for name in GRADCAM:
        path = ctx.src.results / name / "model.pt"
        if not path.is_file():
            missing.append(f"{name}: `{run_command(name)}`")
            continue
        try:
            models[name] = load_checkpoint(path)
        except HarnessError as exc:
            missing.append(f"{name}: {exc}")
    if models:
        config = next(iter(models.values()))[1]["config"]
        for test_set in config["protocol"]["test"]:
            usable = {n: m for n, (m, c) in models.items() if test_set in c["config"]["protocol"]["test"]}
            store_path = ctx.src.crops / test_set
            if not (store_path / "images.npy").is_file():
                continue
            store = load_store(store_path)
            idx = protocol_rows(store.labels, config["protocol"], models[next(iter(usable))][1].get("split"), test_set, "test")
            picks = visuals.gradcam_samples(store, idx)
            path = visuals.gradcam_sheet(usable, store, picks, config["input_size"], ctx.figure(f"gradcam_{test_set}.png"))
            runs = ", ".join(f"{n}: {c.get('train_run_id') or '-'}" for n, (_, c) in models.items() if n in usable)
            doc.image(path, f"Harness: Grad-CAM on {test_set} test crops (one row per model; target: each head's strongest bin, "
                      f"summed over yaw, pitch and roll; layer: the backbone's last block). Angles are yaw/pitch/roll in degrees. "
                      f"Checkpoints from MLflow training runs {runs}.", 230)
    doc.text(("Not run: " + "; ".join(missing)) if missing else "Grad-CAM drawn for every model of the section.")


def gamma_section(ctx: Context) -> None:
    doc = ctx.doc
    text = ctx.paper["bernoulli_text"]
    doc.heading("Bernoulli Figs. 7-8: the disk radius gamma (Criterion I and II)")
    doc.text(text["gamma"] + " " + text["criterion_2"])
    lines, rows, kinds = {}, [], []
    for name in (*GAMMA, "bernoulli_nbg"):
        ctx.placed.add(name)
        config = ctx.configs.get(name)
        test_set, m = ctx.metrics(name, "biwi")
        crit = (ctx.src.criteria(name) or {}).get(test_set) if test_set else None
        if m is None or config is None:
            rows.append([describe(name, config), "-", "not run", "", "", "", "", "", run_command(name)])
            kinds.append("missing")
            continue
        share = dict(zip(crit["criterion_2"]["thresholds"], crit["criterion_2"]["share"])) if crit else {}
        rows.append([describe(name, config), f"{config.get('gamma'):g}", *(fmt(m[k]) for k in KEYS), percent(share.get(3.0)),
                     percent(share.get(5.0)), m.get("run_id", "-")])
        kinds.append("ours")
        if crit:
            lines[name] = (crit["criterion_2"]["thresholds"], crit["criterion_2"]["share"])
    sweep = ctx.src.sweep("gamma")
    mae_lines = {}
    done = sweep[sweep.state == "COMPLETE"].sort_values("gamma") if sweep is not None and len(sweep) else None
    if done is not None:
        test = next((c[:-4] for c in done.columns if c.endswith("_mae") and c != "val_mae"), None)
        for _, r in done.iterrows():
            cells = [fmt(r.get(f"{test}_{k}")) for k in KEYS] if test else ["-"] * len(KEYS)
            rows.append([f"sweep gamma, trial {r.number} ({test or 'no'} test set)", f"{r.gamma:g}", *cells, "-", "-", r.evaluate_run_id])
            kinds.append("ours")
        mae_lines["sweep: validation"] = (done.gamma.tolist(), done.val_mae.tolist())
        if test:
            mae_lines[f"sweep: {test} test"] = (done.gamma.tolist(), done[f"{test}_mae"].tolist())
    else:
        rows.append(["sweep gamma", "-", "not run", "", "", "", "", "", SWEEP_COMMAND["gamma"]])
        kinds.append("missing")
    points = [(ctx.configs[n]["gamma"], ctx.metrics(n, "biwi")[1]["mae"]) for n in GAMMA if n in ctx.configs and ctx.metrics(n, "biwi")[1]]
    if points:
        mae_lines["experiments (AT, nBG): test"] = tuple(map(list, zip(*sorted(points))))
    _, nbg = ctx.metrics("bernoulli_nbg", "biwi")
    if nbg:
        mae_lines["bernoulli_nbg (no AT): test"] = ([ctx.configs["bernoulli_nbg"]["gamma"]], [nbg["mae"]])
    ctx.show(figures.curves({"Criterion I": mae_lines}, ctx.figure("bernoulli_fig7_gamma.png"), "gamma (output-map pixels)", "MAE (deg)"),
             "Harness: MAE against gamma (Bernoulli Fig. 7).", 130)
    ctx.show(figures.curves({"Criterion II": lines}, ctx.figure("bernoulli_fig8_criterion2.png"), "threshold (deg)",
                            "share with all three errors below", marker="", ylim=(0, 1)),
             "Harness: Criterion II curves of the gamma experiments and of bernoulli_nbg (Bernoulli Fig. 8).", 130)
    curves_png = ctx.src.results / "sweeps" / "gamma" / "curves.png"
    if curves_png.is_file():
        shutil.copy(curves_png, ctx.figure("sweep_gamma_curves.png"))
        doc.image(ctx.figure("sweep_gamma_curves.png"), "Harness: the gamma sweep's own figure (Criterion I and II per trial).", 240)
    doc.table(["Run", "Gamma", "Yaw", "Pitch", "Roll", "MAE", "Share < 3 deg", "Share < 5 deg", "MLflow run / command to run it"], rows,
              key="bernoulli_gamma", widths=[70, 14, 14, 14, 14, 14, 20, 20, 62], kinds=kinds,
              note="Test set: BIWI 16/8 (protocol of each experiment). Paper (text only): share > 50% below 3 deg, about 80% at 5 deg.")


def robustness_section(ctx: Context) -> None:
    doc = ctx.doc
    doc.heading("Bernoulli Fig. 10: robustness to translation and occlusion of the test set")
    doc.text(ctx.paper["bernoulli_text"]["robustness"])
    rows, kinds, panels, errors = [], [], {}, {}
    names = list(dict.fromkeys([*BERNOULLI, *(n for n in ctx.configs if (ctx.src.results / n / "robustness.json").is_file())]))
    for name in names:
        report = ctx.src.robustness(name)
        if report is None:
            has_model = (ctx.src.results / name / "model.pt").is_file()
            rows.append([describe(name, ctx.configs.get(name)), "-", "not run", "", "", "", "not run",
                         f"dvc repro robustness@{name}" if has_model else run_command(name)])
            kinds.append("missing")
            continue
        for test_set, e in report["test_sets"].items():
            shown = [f"{fmt(e[k]['mean']['mae'])} ± {fmt(e[k]['std']['mae'])}" for k in ("translation", "occlusion")]
            n = str(e.get("n", "-"))
            rows.append([describe(name, ctx.configs.get(name)), test_set, n, fmt(e["clean"]["mae"]), *shown,
                         str(report.get("repeats", "-")), report.get("run_id", "-")])
            kinds.append("ours")
            # one panel per test set may mix protocols (P1's and P2's BIWI): the legend says which
            protocol = (ctx.configs.get(name) or {}).get("protocol", {}).get("name", "?")
            label = f"{name} ({protocol}, {n} samples)"
            panels.setdefault(test_set, {})[label] = [e["clean"]["mae"], e["translation"]["mean"]["mae"], e["occlusion"]["mean"]["mae"]]
            errors.setdefault(test_set, {})[label] = [0.0, e["translation"]["std"]["mae"], e["occlusion"]["std"]["mae"]]
    if panels:
        doc.image(figures.grouped_bars(panels, ["clean", "translation", "occlusion"], ctx.figure("bernoulli_fig10_robustness.png"), errors=errors),
                  "Harness: MAE on clean and perturbed test crops; bars: mean of the repeats, whiskers: their standard deviation.", 200)
    doc.table(["Experiment", "Test set", "Samples", "Clean MAE", "Translation MAE (mean ± std)", "Occlusion MAE (mean ± std)", "Repeats",
               "MLflow run / command to run it"], rows, key="bernoulli_fig10", widths=[70, 22, 16, 18, 34, 34, 15, 62], kinds=kinds,
              note="Perturbations (pipeline/robustness.py): translation shifts each crop by up to 10% of its side in x and y with zero fill; "
                   "occlusion blacks out a rectangle covering 10-25% of the crop; each repeat (seeds 0-4) draws every sample anew; no retraining.")


def sizes_section(ctx: Context) -> None:
    def split_label(name: str) -> str:
        _, m = ctx.metrics(name, "biwi")
        split = (m or {}).get("split")
        return f" - {len(split['train'])} train / {len(split['test'])} test sequences" if split else ""

    comparison(ctx, "bernoulli_fig11", "Bernoulli Fig. 11: training-set size (BIWI 16/8, 12/12, 8/16)", ("biwi",), SIZES,
               extra_label=split_label)
    ctx.doc.text(ctx.paper["bernoulli_text"]["size_protocols"])
    points = []
    for name in SIZES:
        _, m = ctx.metrics(name, "biwi")
        if m and m.get("split"):
            points.append((len(m["split"]["train"]), m["mae"], name))
    points.sort()
    path = figures.curves({"Criterion I": {"harness": ([p[0] for p in points], [p[1] for p in points])}},
                          ctx.figure("bernoulli_fig11_sizes.png"), "training sequences", "test MAE (deg)")
    ctx.show(path, "Harness: test MAE against the number of training sequences (a dataset with fewer sequences than BIWI's 24 "
             "is split in the protocol's proportion).", 120)


def criterion3_section(ctx: Context) -> None:
    doc = ctx.doc
    doc.heading("Bernoulli Fig. 13: Criterion III on AFLW2000 (MAE by range of |true angle|)")
    doc.text(ctx.paper["bernoulli_text"]["criterion_3"])
    panels, share = {}, {}
    for name in P1_PEERS:
        crit = (ctx.src.criteria(name) or {}).get("aflw2000")
        if not crit:
            continue
        for a in ANGLES:
            rows = [r for r in crit["criterion_3"] if r["angle"] == a]
            mids = [(r["lo"] + r["hi"]) / 2 for r in rows]
            panels.setdefault(a, {})[name] = (mids, [math.nan if r["mae"] is None else r["mae"] for r in rows])
            share.setdefault(a, (mids, [r["share"] for r in rows]))
    if not (ctx.src.criteria("bernoulli_p1") or {}).get("aflw2000"):
        doc.text(f"bernoulli_p1 (the paper's model on AFLW2000) not run: `{run_command('bernoulli_p1')}`.")
    if panels:
        path = figures.curves(panels, ctx.figure("bernoulli_fig13_criterion3.png"), "|true angle| (deg, range centre)", "MAE (deg)", share=share)
        ctx.show(path, "Harness: MAE per 10-degree range of the absolute true angle (lines, left axis) and the share of test samples in "
                  "each range (grey bars, right axis), for every protocol-1 experiment measured on AFLW2000.", 250)


def pictures_section(ctx: Context) -> None:
    from pipeline.store import load_store

    doc = ctx.doc
    doc.heading("Predictions drawn on test crops", 1)
    doc.text("Pose axes from the head centre (harness convention, pipeline.angles.rotation_matrix): red = the head's x axis, green = up, "
             "blue = the facing direction; solid = prediction, dashed = truth. Top row: 8 random test samples; bottom row: the 8 largest "
             "errors (mean of the three absolute errors). Captions give yaw/pitch/roll in degrees.")
    missing = []
    for name in PICTURES:
        config = ctx.configs.get(name)
        drawn = False
        for test_set in (config or {}).get("protocol", {}).get("test", []):
            pred = ctx.src.predictions(name, test_set)
            if pred is None or not len(pred) or not (ctx.src.crops / test_set / "images.npy").is_file():
                continue
            path = visuals.prediction_sheet(load_store(ctx.src.crops / test_set), pred, ctx.figure(f"predictions_{name}_{test_set}.png"))
            if path:
                run_id = ((ctx.src.metrics(name) or {}).get(test_set) or {}).get("run_id", "-")
                doc.image(path, f"{describe(name, config)} on {test_set} (predictions of MLflow run {run_id}).", 230)
                drawn = True
        if not drawn:
            missing.append(f"{name}: `{run_command(name)}`")
    if missing:
        doc.text("Not run: " + "; ".join(missing))


def training_section(ctx: Context) -> None:
    lines = {}
    for name in ctx.configs:
        log = ctx.src.results / name / "train_log.csv"
        if log.is_file():
            df = pd.read_csv(log)
            if "val_mae" in df:
                lines[name] = (df["epoch"].tolist(), df["val_mae"].tolist())
    if lines:
        ctx.doc.heading("Training", 1)
        path = figures.curves({"validation MAE per epoch": lines}, ctx.figure("training_curves.png"), "epoch", "validation MAE (deg)")
        ctx.show(path, "Validation MAE per epoch (held-out groups of each experiment's training set).", 150)


def others_section(ctx: Context) -> None:
    rest = [n for n in ctx.configs if n not in ctx.placed]
    if not rest:
        return
    ctx.doc.heading("Other experiments of params.yaml")
    rows, kinds = [], []
    for name in rest:
        config = ctx.configs[name]
        m = ctx.src.metrics(name) or {}
        for test_set in config["protocol"]["test"]:
            if test_set in m:
                rows.append([describe(name, config), config["protocol"]["name"], test_set, *(fmt(m[test_set][k]) for k in KEYS), m[test_set].get("run_id", "-")])
                kinds.append("ours")
        if not any(t in m for t in config["protocol"]["test"]):
            rows.append([describe(name, config), config["protocol"]["name"], "-", "not run", "", "", "", run_command(name)])
            kinds.append("missing")
    ctx.doc.table(["Experiment", "Protocol", "Test set", "Yaw", "Pitch", "Roll", "MAE", "MLflow run / command to run it"], rows,
                  key="others", widths=[70, 20, 22, 15, 15, 15, 15, 62], kinds=kinds)


def intro(ctx: Context) -> None:
    ctx.doc.text(f"Generated {datetime.date.today().isoformat()} from commit {git_commit()}. Shaded rows (PDF) and rows whose Source says "
                 "'paper' are numbers printed in the papers (pipeline/paper_values.yaml); rows marked 'harness' were measured by this "
                 "pipeline, with their MLflow run id; 'not run' rows give the command that runs them. Synthetic test sets are not the "
                 "real datasets: compare methods within the harness, not against the papers' absolute values. Angles in degrees.")


def build(params: dict, out: Path, results: Path = RESULTS, crops: Path = CROPS) -> Document:
    """The report's document; its figures are written into out/figures/."""
    configs = {name: experiment_config(params, name) for name in params["experiments"]}
    paper = yaml.safe_load(PAPER_VALUES.read_text())
    (out / "figures").mkdir(parents=True, exist_ok=True)
    ctx = Context(configs, paper, Sources(Path(results), Path(crops)), out / "figures", Document("Head pose benchmark report"))
    intro(ctx)
    data_section(ctx)
    ctx.doc.heading("DADL (Zhao et al. 2023)", 1)
    comparison(ctx, "dadl_table1", "DADL Table 1: AFLW2000 after training on 300W-LP", ("aflw2000",), P1_PEERS, "dadl_table1")
    comparison(ctx, "dadl_table2", "DADL Table 2: BIWI after training on 300W-LP", ("biwi",), P1_PEERS, "dadl_table2")
    comparison(ctx, "dadl_table3", "DADL Table 3: BIWI 70/30", ("biwi",), P2_ROWS, "dadl_table3")
    comparison(ctx, "dadl_table4", "DADL Table 4: backbones (harness default DADL = ResNet-18; the paper's DADL = ResNet-50)",
               ("aflw2000", "biwi"), BACKBONES, "dadl_table4")
    comparison(ctx, "dadl_table5", "DADL Table 5: ablation (MAE)", ("aflw2000", "biwi"), ABLATION, "dadl_table5", metrics=("mae",))
    ablation_figure(ctx)
    alpha_beta_section(ctx)
    asymmetry_section(ctx)
    gradcam_section(ctx)
    ctx.doc.heading("Bernoulli heatmap (Hu et al.)", 1)
    comparison(ctx, "bernoulli_table2", "Bernoulli Table II: BIWI 16/8", ("biwi",), BERNOULLI, "bernoulli_table2")
    gamma_section(ctx)
    robustness_section(ctx)
    sizes_section(ctx)
    comparison(ctx, "bernoulli_fig12", "Bernoulli Fig. 12: AFLW2000 after training on 300W-LP", ("aflw2000",), ("bernoulli_p1",))
    ctx.doc.text(paper["bernoulli_text"]["aflw2000"] + " For the numbers DADL prints for some of these methods, see DADL Table 1 above.")
    criterion3_section(ctx)
    pictures_section(ctx)
    others_section(ctx)
    training_section(ctx)
    return ctx.doc


def publish(staging: Path, target: Path) -> None:
    """Move a finished report (report.md, report.pdf, figures/) from staging into place."""
    old = target / "figures"
    if old.exists():
        shutil.rmtree(old)
    (staging / "figures").rename(old)
    for name in ("report.md", "report.pdf"):
        os.replace(staging / name, target / name)


def write_report(params: dict, reports: Path = REPORTS, results: Path = RESULTS, crops: Path = CROPS) -> Document:
    """Build the report and write report.md, report.pdf and figures/ into `reports`."""
    reports.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=reports) as tmp:
        staging = Path(tmp)
        doc = build(params, staging, results, crops)
        (staging / "report.md").write_text(doc.markdown(staging))
        doc.pdf(staging / "report.pdf")
        publish(staging, reports)
    return doc


@cli
def main():
    write_report(load_params())
    print(f"report written to {REPORTS / 'report.md'} and {REPORTS / 'report.pdf'}")


if __name__ == "__main__":
    main()
