"""The Bernoulli-heatmap sections of the report: Figs. 7-8 (gamma, Criteria I and II), Fig. 10
(robustness), Fig. 11 (training-set size) and Fig. 13 (Criterion III on AFLW2000)."""
from __future__ import annotations

import math
import shutil

from pipeline.core.angles import ANGLES
from pipeline.reporting import figures
from pipeline.reporting.tables import KEYS, SWEEP_COMMAND, Context, comparison, describe, fmt, percent, run_command


def gamma_section(ctx: Context) -> None:
    doc = ctx.doc
    text = ctx.paper["bernoulli_text"]
    doc.heading("Bernoulli Figs. 7-8: the disk radius gamma (Criterion I and II)")
    doc.text(text["gamma"] + " " + text["criterion_2"])
    lines, rows, kinds = {}, [], []
    gamma_rows = ctx.layout["bernoulli_gamma"]
    for name in (*gamma_rows, "bernoulli_nbg"):
        ctx.placed.add(name)
        config = ctx.configs.get(name)
        test_set, m = ctx.metrics(name, "biwi")
        crit = (ctx.src.criteria(name) or {}).get(test_set) if test_set else None
        if m is None or config is None:
            rows.append([describe(name, config), "-", "not run", "", "", "", "", "", run_command(name)])
            kinds.append("missing")
            continue
        share = dict(zip(crit["criterion_2"]["thresholds"], crit["criterion_2"]["share"])) if crit else {}
        rows.append([describe(name, config), f"{config.hparams.gamma:g}", *(fmt(m[k]) for k in KEYS), percent(share.get(3.0)),
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
    points = sorted((ctx.configs[n].hparams.gamma, ctx.metrics(n, "biwi")[1]["mae"], ctx.interval(n, ctx.metrics(n, "biwi")[0]))
                    for n in gamma_rows if n in ctx.configs and ctx.metrics(n, "biwi")[1])
    bounds = {}
    if points:
        mae_lines["experiments (AT, nBG): test"] = ([p[0] for p in points], [p[1] for p in points])
        bounds["experiments (AT, nBG): test"] = [p[2] for p in points]
    _, nbg = ctx.metrics("bernoulli_nbg", "biwi")
    if nbg:
        mae_lines["bernoulli_nbg (no AT): test"] = ([ctx.configs["bernoulli_nbg"].hparams.gamma], [nbg["mae"]])
    ctx.show(figures.curves({"Criterion I": mae_lines}, ctx.figure("bernoulli_fig7_gamma.png"), "gamma (output-map pixels)", "MAE (deg)",
                            intervals={"Criterion I": bounds}),
             "Harness: MAE against gamma (Bernoulli Fig. 7); error bars: 95% intervals over seeds and test samples, when "
             "an experiment has several seeds.", 130)
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
    rows, kinds, panels, errors, described = [], [], {}, {}, {}
    names = list(dict.fromkeys([*ctx.layout["bernoulli_robustness"], *(n for n in ctx.configs if ctx.src.robustness(n))]))
    for name in names:
        reports = ctx.src.robustness(name)
        if not reports:
            has_model = ctx.src.model(name) is not None
            rows.append([describe(name, ctx.configs.get(name)), "-", "-", "not run", "", "", "", "not run",
                         "dvc repro" if has_model else run_command(name)])
            kinds.append("missing")
            continue
        bars = {}
        for seed, report in reports.items():
            for test_set, e in report["test_sets"].items():
                described.setdefault("repeats", report.get("repeats"))
                described.update({k: e[k].get("description") for k in ("translation", "occlusion") if k not in described})
                shown = [f"{fmt(e[k]['mean']['mae'])} ± {fmt(e[k]['std']['mae'])}" for k in ("translation", "occlusion")]
                n = str(e.get("n", "-"))
                rows.append([describe(name, ctx.configs.get(name)), test_set, str(seed), n, fmt(e["clean"]["mae"]), *shown,
                             str(report.get("repeats", "-")), report.get("run_id", "-")])
                kinds.append("ours")
                bars.setdefault(test_set, []).append((n, [e["clean"]["mae"], e["translation"]["mean"]["mae"], e["occlusion"]["mean"]["mae"]],
                                                      [0.0, e["translation"]["std"]["mae"], e["occlusion"]["std"]["mae"]]))
        # one panel per test set may mix protocols (P1's and P2's BIWI): the legend says which; several seeds: their mean
        protocol = ctx.configs[name].protocol.name if name in ctx.configs else "?"
        for test_set, per_seed in bars.items():
            label = f"{name} ({protocol}, {per_seed[0][0]} samples{f', mean of {len(per_seed)} seeds' if len(per_seed) > 1 else ''})"
            panels.setdefault(test_set, {})[label] = [sum(v[1][i] for v in per_seed) / len(per_seed) for i in range(3)]
            errors.setdefault(test_set, {})[label] = [sum(v[2][i] for v in per_seed) / len(per_seed) for i in range(3)]
    if panels:
        doc.image(figures.grouped_bars(panels, ["clean", "translation", "occlusion"], ctx.figure("bernoulli_fig10_robustness.png"), errors=errors),
                  "Harness: MAE on clean and perturbed test crops; bars: mean of the repeats, whiskers: their standard deviation.", 200)
    doc.table(["Experiment", "Test set", "Seed", "Samples", "Clean MAE", "Translation MAE (mean ± std)", "Occlusion MAE (mean ± std)",
               "Repeats", "MLflow run / command to run it"], rows, key="bernoulli_fig10", widths=[66, 20, 12, 16, 18, 34, 34, 15, 58],
              kinds=kinds,
              note=(f"Perturbations (params.yaml robustness, pipeline/analysis/robustness.py): translation: {described['translation']}; "
                    f"occlusion: {described['occlusion']}; each of the {described['repeats']} repeats (seeds 0-{described['repeats'] - 1}) "
                    "draws every sample anew; no retraining.") if described else "Perturbations: params.yaml robustness.")


def sizes_section(ctx: Context) -> None:
    def split_label(name: str) -> str:
        _, m = ctx.metrics(name, "biwi")
        split = (m or {}).get("split")
        return f" - {len(split['train'])} train / {len(split['test'])} test sequences" if split else ""

    comparison(ctx, "bernoulli_fig11", "Bernoulli Fig. 11: training-set size (BIWI 16/8, 12/12, 8/16)", ("biwi",), ctx.layout["bernoulli_sizes"],
               extra_label=split_label)
    ctx.doc.text(ctx.paper["bernoulli_text"]["size_protocols"])
    points = []
    for name in ctx.layout["bernoulli_sizes"]:
        test_set, m = ctx.metrics(name, "biwi")
        if m and m.get("split"):
            points.append((len(m["split"]["train"]), m["mae"], ctx.interval(name, test_set)))
    points.sort(key=lambda p: p[0])
    path = figures.curves({"Criterion I": {"harness": ([p[0] for p in points], [p[1] for p in points])}},
                          ctx.figure("bernoulli_fig11_sizes.png"), "training sequences", "test MAE (deg)",
                          intervals={"Criterion I": {"harness": [p[2] for p in points]}})
    ctx.show(path, "Harness: test MAE against the number of training sequences (a dataset with fewer sequences than BIWI's 24 "
             "is split in the protocol's proportion).", 120)


def criterion3_section(ctx: Context) -> None:
    doc = ctx.doc
    doc.heading("Bernoulli Fig. 13: Criterion III on AFLW2000 (MAE by range of |true angle|)")
    doc.text(ctx.paper["bernoulli_text"]["criterion_3"])
    panels, share = {}, {}
    for name in ctx.layout["criterion3"]:
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

