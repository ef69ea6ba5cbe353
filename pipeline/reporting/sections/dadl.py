"""The DADL sections of the report: Fig. 11 (ablation per angle), Fig. 12 (alpha x beta), Figs.
4-5 (asymmetry) and Fig. 10 (Grad-CAM). Its comparison tables (Tables 1-5) are built in
pipeline.reporting.build from layout.yaml."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

from pipeline.core.angles import ANGLES
from pipeline.core.errors import HarnessError
from pipeline.data.protocols import rows as protocol_rows
from pipeline.data.store import load_store
from pipeline.engine.inference import load_checkpoint
from pipeline.reporting import figures, visuals
from pipeline.reporting.sweep_figures import heatmap
from pipeline.reporting.tables import DISPLAY, KEYS, NAMES, SWEEP_COMMAND, Context, fmt, run_command


def ablation_figure(ctx: Context) -> None:
    """DADL Fig. 11: per-angle MAE of the ablation rows, with half the 95% interval as whiskers
    when an experiment has several seeds."""
    ctx.doc.heading("DADL Fig. 11: per-angle MAE of the ablation rows", 3)
    panels, errors = {}, {}
    for family in ("aflw2000", "biwi"):
        series, whiskers = {}, {}
        for name in ctx.layout["dadl_table5"]:
            test_set, m = ctx.metrics(name, family)
            if m:
                series[name] = [m[k] for k in KEYS]
                whiskers[name] = [_half_width(ctx.interval(name, test_set, k)) for k in KEYS]
        if series:
            panels[DISPLAY[family]], errors[DISPLAY[family]] = series, whiskers
    missing = [n for n in ctx.layout["dadl_table5"] if not any(ctx.metrics(n, f)[1] for f in ("aflw2000", "biwi"))]
    if panels:
        path = figures.grouped_bars(panels, [NAMES[k] for k in KEYS], ctx.figure("dadl_fig11_ablation.png"), errors=errors)
        ctx.doc.image(path, "Harness: per-angle MAE of the ablation rows (DADL Fig. 11 shows the paper's only as bars, without numbers); "
                      "whiskers: half the 95% interval over seeds and test samples (none with one seed). Overlapping whiskers do not "
                      "mean a difference is unresolved: the Claims table compares two rows on the same test samples, which "
                      "is much tighter.", 180)
    ctx.doc.text("Not run yet: " + "; ".join(f"{n}: `{run_command(n)}`" for n in missing) if missing else "Every ablation row has been run.")


def _half_width(bounds: tuple[float, float] | None) -> float:
    """A whisker for a bar: half the 95% interval's width (0 without an interval)."""
    return (bounds[1] - bounds[0]) / 2 if bounds else 0.0


def backbone_figure(ctx: Context) -> None:
    """DADL Table 4 as bars: MAE per backbone and test set, with half the 95% interval as whiskers
    when an experiment has several seeds."""
    panels, errors = {}, {}
    for family in ("aflw2000", "biwi"):
        for name in ctx.layout["dadl_table4"]:
            test_set, m = ctx.metrics(name, family)
            if m:
                panels.setdefault(DISPLAY[family], {})[name] = [m["mae"]]
                errors.setdefault(DISPLAY[family], {})[name] = [_half_width(ctx.interval(name, test_set))]
    if sum(len(v) for v in panels.values()) > 1:
        path = figures.grouped_bars(panels, ["MAE"], ctx.figure("dadl_table4_backbones.png"), errors=errors)
        ctx.doc.image(path, "Harness: MAE per backbone (DADL Table 4); whiskers: half the 95% interval over seeds and test samples "
                      "(none with one seed).", 150)


def alpha_beta_section(ctx: Context) -> None:
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
                   (" (the pruning benchmark's run of the same grid, `python -m benchmarks.pruning`)" if study != "alpha_beta" else "") +
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
    doc = ctx.doc
    doc.heading("DADL Fig. 10: Grad-CAM of DADL and HopeNet")
    models, missing = {}, []
    for name in ctx.layout["gradcam"]:
        path = ctx.src.model(name)
        if path is None:
            missing.append(f"{name}: `{run_command(name)}`")
            continue
        try:
            models[name] = load_checkpoint(path)
        except HarnessError as exc:
            missing.append(f"{name}: {exc}")
    if models:
        config = next(iter(models.values()))[1].experiment
        for test_set in config.protocol.test:
            usable = {n: m for n, (m, c) in models.items() if test_set in c.experiment.protocol.test}
            store_path = ctx.src.crops / test_set
            if not (store_path / "images.npy").is_file():
                continue
            store = load_store(store_path)
            idx = protocol_rows(store.labels, config.protocol, models[next(iter(usable))][1].split, test_set, "test")
            picks = visuals.gradcam_samples(store, idx)
            path = visuals.gradcam_sheet(usable, store, picks, config.input_size, ctx.figure(f"gradcam_{test_set}.png"))
            runs = ", ".join(f"{n}: {c.train_run_id or '-'}" for n, (_, c) in models.items() if n in usable)
            doc.image(path, f"Harness: Grad-CAM on {test_set} test crops (one row per model; target: each head's strongest bin, "
                      f"summed over yaw, pitch and roll; layer: the backbone's last block). Angles are yaw/pitch/roll in degrees. "
                      f"Checkpoints from MLflow training runs {runs}.", 230)
    doc.text(("Not run: " + "; ".join(missing)) if missing else "Grad-CAM drawn for every model of the section.")

