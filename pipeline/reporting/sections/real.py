"""The section "Trained on synthetic, tested on real AFLW2000": the checkpoints that layout.yaml
names (the sim2real experiment and, for contrast, the default dadl run) scored on the real
AFLW2000 images of params.yaml `report.real_aflw2000`, when that folder is present (they are
never copied into the repository): per-angle MAE, the signed error by range of true yaw and the
line of predicted against true angle (whether the error is an offset or scatter), Criterion III by
angle range, and real crops with predicted and true axes, random ones and the worst. A checkpoint
whose experiment names pitch_level_from has its pitch levelled by that experiment's run of the same
seed, as pipeline.evaluate does, and says so. Without the folder, the section says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.analysis.levelling import level_pitch
from pipeline.analysis.scoring import predictions_table, score
from pipeline.core.angles import ANGLES
from pipeline.core.errors import HarnessError
from pipeline.core.metrics import linear_fit, signed_errors_by_yaw
from pipeline.core.paths import project_root
from pipeline.data.cropping import cropped_folder
from pipeline.engine.inference import load_checkpoint, predict_as_trained
from pipeline.reporting import figures, visuals
from pipeline.reporting.tables import KEYS, Context, describe, fmt, run_command


def real_folder(setting: str) -> Path:
    """params.yaml report.real_aflw2000, relative to the repository (the user's, also when DVC runs
    an experiment in a temporary copy) or absolute."""
    path = Path(setting).expanduser()
    return path if path.is_absolute() else project_root() / path


def real_section(ctx: Context, setting: str) -> None:
    doc = ctx.doc
    doc.heading("Trained on synthetic, tested on real AFLW2000", 1)
    folder = real_folder(setting)
    names = ctx.layout.get("real_aflw2000", [])
    if not folder.is_dir():
        doc.text(f"The real AFLW2000 images were not found at {setting} (params.yaml report.real_aflw2000, relative to the "
                 "repository); this section needs them and is left out. They are never copied into the repository.")
        return
    doc.text(f"The checkpoints below were trained on the built-in synthetic data only and are scored here on the real AFLW2000 "
             f"images of {setting}, cropped with each checkpoint's own crop settings as the evaluate stage crops a test set "
             "(`python -m pipeline.evaluate --checkpoint ... --dataset aflw2000 --root ...` gives the same numbers).")
    rows, panels, share, bias_rows, fit_rows = [], {}, {}, [], []
    for name in names:
        path = ctx.src.model(name)
        if path is None:
            rows.append([describe(name, ctx.configs.get(name)), "not run", "", "", "", "", run_command(name)])
            continue
        try:
            model, ckpt = load_checkpoint(path)
        except HarnessError as exc:
            rows.append([describe(name, ctx.configs.get(name)), f"unreadable: {exc}", "", "", "", "", "-"])
            continue
        exp = ckpt.experiment
        with cropped_folder("aflw2000", folder, exp.crop) as store:
            idx = np.arange(len(store))
            pred = predict_as_trained(model, exp, store, idx)
            label = describe(name, exp)
            if exp.pitch_level_from:
                reference = ctx.src.run_model(exp.pitch_level_from, exp.seed)
                if reference is None:
                    label += f", pitch not levelled ({exp.pitch_level_from} seed {exp.seed} not trained)"
                else:
                    shift = level_pitch(pred, reference, "aflw2000", folder, store.labels["sample_id"])
                    label += f", pitch levelled from {exp.pitch_level_from} seed {exp.seed} (shift {shift:+.2f})"
            metrics, criteria = score(store, idx, pred)
            sheet = visuals.prediction_sheet(store, predictions_table(store, idx, pred), ctx.figure(f"real_aflw2000_{name}.png"))
        rows.append([label, *(fmt(metrics[k]) for k in KEYS), str(metrics["n"]), ckpt.train_run_id or "-"])
        true = store.ypr[idx]
        for r in signed_errors_by_yaw(pred, true):
            bias_rows.append([label, f"{r['lo']} to {r['hi']}", str(r["n"]), *(_signed(r[a]) for a in ANGLES)])
        fit = linear_fit(pred, true)
        fit_rows.append([label, *(_line(fit[a]) for a in ANGLES)])
        for a in ANGLES:
            ranges = [r for r in criteria["criterion_3"] if r["angle"] == a]
            mids = [(r["lo"] + r["hi"]) / 2 for r in ranges]
            panels.setdefault(a, {})[name] = (mids, [np.nan if r["mae"] is None else r["mae"] for r in ranges])
            share.setdefault(a, (mids, [r["share"] for r in ranges]))
        if sheet:
            doc.image(sheet, f"{label} on real AFLW2000: top row 8 random images, bottom row the 8 largest errors "
                      "(solid: predicted axes, dashed: the labels; captions yaw/pitch/roll).", 230)
    doc.table(["Checkpoint", "Yaw", "Pitch", "Roll", "MAE", "Images", "MLflow training run / command"], rows, key="real_aflw2000",
              widths=[90, 16, 16, 16, 16, 18, 62],
              note="Real AFLW2000 images within +-99 degrees (the papers' filter). Paper rows for comparison, trained on real "
                   "300W-LP: DADL Table 1 (e.g. HopeNet 6.16, FAN 9.12, 3DDFA 7.39, DADL 4.67).")
    if bias_rows:
        doc.table(["Checkpoint", "True yaw (deg)", "Images", "Yaw", "Pitch", "Roll"], bias_rows, key="real_aflw2000_bias",
                  widths=[90, 30, 18, 20, 20, 20],
                  note="Mean signed error, predicted minus true (degrees), by range of the signed true yaw: an offset shows "
                       "here, where the absolute errors above mix it with scatter.")
        doc.table(["Checkpoint", "Yaw", "Pitch", "Roll"], fit_rows, key="real_aflw2000_fit", widths=[90, 50, 50, 50],
                  note="Least-squares line of predicted against true angle, predicted = intercept + slope x true, and the "
                       "correlation r: slope below 1 under-reads large angles, an intercept away from 0 is a constant offset.")
    path = figures.curves(panels, ctx.figure("real_aflw2000_criterion3.png"), "|true angle| (deg, range centre)", "MAE (deg)", share=share)
    ctx.show(path, "Criterion III on real AFLW2000: MAE per 10-degree range of the absolute true angle (lines) and the share of "
                   "images in each range (grey bars).", 250)


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _line(fit) -> str:
    if fit is None:
        return "-"
    sign = "-" if fit["slope"] < 0 else "+"
    return f"{fit['intercept']:+.2f} {sign} {abs(fit['slope']):.2f} x true, r {fit['r']:.2f}"
