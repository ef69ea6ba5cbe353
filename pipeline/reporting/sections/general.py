"""Sections of the report that serve both papers: the introduction, the data, predictions drawn
on test crops, training curves and the experiments no other section shows."""
from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd

from pipeline.core.paths import crop_store, crop_stores
from pipeline.data.store import load_store
from pipeline.engine.tracking import git_commit
from pipeline.reporting import figures, visuals
from pipeline.reporting.tables import KEYS, Context, describe, fmt, run_command


def intro(ctx: Context) -> None:
    ctx.doc.text(f"Generated {datetime.date.today().isoformat()} from commit {git_commit()}. Shaded rows (PDF) and rows whose Source says "
                 "'paper' are numbers printed in the papers (pipeline/reporting/paper_values.yaml); rows marked 'harness' were measured by this "
                 "pipeline, with their MLflow run id; 'not run' rows give the command that runs them. Synthetic test sets are not the "
                 "real datasets: compare methods within the harness, not against the papers' absolute values. Angles in degrees.")


def data_section(ctx: Context) -> None:
    ctx.doc.heading("Data")
    rows, notes = [], []
    for folder in crop_stores(ctx.src.crops):
        meta = ctx.src.meta(str(folder))
        if meta is None:
            continue
        source = meta.get("source", "unknown")
        if source == "synthetic":
            shown = "synthetic (built-in renderer)"
        else:
            notes.append(f"[{len(notes) + 1}] {_label(folder)}: {source}")
            shown = f"real, see [{len(notes)}]"
        size = meta.get("store_size")
        rows.append([_label(folder), shown, meta.get("n_read", "-"), meta.get("n", "-"), meta.get("n_filtered", "-"), meta.get("rule", "-"),
                     "x".join(map(str, size)) if isinstance(size, list) else size or "-"])
    if not rows:
        ctx.doc.text(f"No crop store found under {ctx.src.crops}: run `dvc repro crop`.")
        return
    ctx.doc.table(["Dataset", "Source", "Samples read", "Kept", "Removed by the +-99 deg filter", "Crop rule", "Stored size (px)"],
                  rows, key="data", widths=[30, 60, 25, 20, 40, 30, 30],
                  note=("Sources: " + "; ".join(notes) + ". " if notes else "") +
                  "Test sets are scored on the kept samples of their protocol's test rows (the n of each table's data note).")


def _label(store: Path) -> str:
    """A store's row name: the dataset, and the side of an extra store, e.g. `300w_lp (110px)`."""
    return store.name if store.parent == Path(".") else f"{store.name} ({store.parent.name})"


def pictures_section(ctx: Context) -> None:
    doc = ctx.doc
    doc.heading("Predictions drawn on test crops", 1)
    doc.text("Pose axes from the head centre (harness convention, pipeline.core.angles.rotation_matrix): red = the head's x axis, green = up, "
             "blue = the facing direction; solid = prediction, dashed = truth. Top row: 8 random test samples; bottom row: the 8 largest "
             "errors (mean of the three absolute errors). Captions give yaw/pitch/roll in degrees.")
    missing = []
    for name in ctx.layout["pictures"]:
        config = ctx.configs.get(name)
        drawn = False
        for test_set in config.protocol.test if config else []:
            pred = ctx.src.predictions(name, test_set)
            store = crop_store(test_set, config.store_size, ctx.src.crops)
            if pred is None or not len(pred) or not (store / "images.npy").is_file():
                continue
            path = visuals.prediction_sheet(load_store(store), pred, ctx.figure(f"predictions_{name}_{test_set}.png"))
            if path:
                m = (ctx.src.metrics(name) or {}).get(test_set) or {}
                seed = (m.get("seeds") or ["?"])[0]
                doc.image(path, f"{describe(name, config)} on {test_set}, seed {seed} (predictions of MLflow run {m.get('run_id', '-')}).", 230)
                drawn = True
        if not drawn:
            missing.append(f"{name}: `{run_command(name)}`")
    if missing:
        doc.text("Not run: " + "; ".join(missing))


def training_section(ctx: Context) -> None:
    lines = {}
    for name in ctx.configs:
        logs = ctx.src.train_logs(name)
        for seed, log in logs.items():
            df = pd.read_csv(log)
            if "val_mae" in df:
                lines[name if len(logs) == 1 else f"{name} seed {seed}"] = (df["epoch"].tolist(), df["val_mae"].tolist())
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
        for test_set in config.protocol.test:
            if test_set in m:
                rows.append([describe(name, config), config.protocol.name, test_set, *(fmt(m[test_set][k]) for k in KEYS), m[test_set].get("run_id", "-")])
                kinds.append("ours")
        if not any(t in m for t in config.protocol.test):
            rows.append([describe(name, config), config.protocol.name, "-", "not run", "", "", "", run_command(name)])
            kinds.append("missing")
    ctx.doc.table(["Experiment", "Protocol", "Test set", "Yaw", "Pitch", "Roll", "MAE", "MLflow run / command to run it"], rows,
                  key="others", widths=[70, 20, 22, 15, 15, 15, 15, 62], kinds=kinds)

