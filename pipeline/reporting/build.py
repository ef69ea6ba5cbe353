"""The report: every section in the papers' order, written as reports/report.md and
reports/report.pdf with figures in reports/figures/.

Every row says where its numbers come from: a paper (typed into paper_values.yaml, shaded in the
PDF) or this harness (read from results/, with the MLflow run id and the data it ran on). An
experiment without results says "not run" and gives the command that runs it; no row of a
section's layout (layout.yaml) is ever left out. `build` takes the folders it reads as arguments
so tests can point it at fabricated results.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from pipeline.config.experiment import resolve_experiment
from pipeline.config.params import Params
from pipeline.core.paths import CROPS, REPORTS, RESULTS
from pipeline.engine import tracking
from pipeline.reporting.document import Document
from pipeline.reporting.paper import load_paper_values
from pipeline.reporting.sections import bernoulli, claims, dadl, general, real
from pipeline.reporting.sources import Sources
from pipeline.reporting.tables import Context, comparison

LAYOUT = Path(__file__).parent / "layout.yaml"


def load_layout(path: Path = LAYOUT) -> dict:
    return yaml.safe_load(Path(path).read_text())


def build(params: Params, out: Path, results: Path = RESULTS, crops: Path = CROPS) -> Document:
    """The report's document; its figures are written into out/figures/."""
    configs = {name: resolve_experiment(params, name) for name in params.experiments}
    layout = load_layout()
    paper = load_paper_values()
    (out / "figures").mkdir(parents=True, exist_ok=True)
    ctx = Context(configs, params.sweeps, layout, paper, Sources(Path(results), Path(crops)), out / "figures",
                  Document("Head pose benchmark report"))
    general.intro(ctx)
    claims.claims_section(ctx)
    general.data_section(ctx)
    ctx.doc.heading("DADL (Zhao et al. 2023)", 1)
    comparison(ctx, "dadl_table1", "DADL Table 1: AFLW2000 after training on 300W-LP", ("aflw2000",), layout["dadl_table1"], "dadl_table1")
    comparison(ctx, "dadl_table2", "DADL Table 2: BIWI after training on 300W-LP", ("biwi",), layout["dadl_table2"], "dadl_table2")
    comparison(ctx, "dadl_table3", "DADL Table 3: BIWI 70/30", ("biwi",), layout["dadl_table3"], "dadl_table3")
    comparison(ctx, "dadl_table4", "DADL Table 4: backbones (harness default DADL = ResNet-18; the paper's DADL = ResNet-50)",
               ("aflw2000", "biwi"), layout["dadl_table4"], "dadl_table4")
    dadl.backbone_figure(ctx)
    comparison(ctx, "dadl_table5", "DADL Table 5: ablation (MAE)", ("aflw2000", "biwi"), layout["dadl_table5"], "dadl_table5", metrics=("mae",))
    dadl.ablation_figure(ctx)
    dadl.alpha_beta_section(ctx)
    dadl.asymmetry_section(ctx)
    dadl.gradcam_section(ctx)
    ctx.doc.heading("Bernoulli heatmap (Hu et al.)", 1)
    comparison(ctx, "bernoulli_table2", "Bernoulli Table II: BIWI 16/8", ("biwi",), layout["bernoulli_table2"], "bernoulli_table2")
    bernoulli.gamma_section(ctx)
    bernoulli.robustness_section(ctx)
    bernoulli.sizes_section(ctx)
    comparison(ctx, "bernoulli_fig12", "Bernoulli Fig. 12: AFLW2000 after training on 300W-LP", ("aflw2000",), layout["bernoulli_fig12"])
    ctx.doc.text(paper["bernoulli_text"]["aflw2000"] + " For the numbers DADL prints for some of these methods, see DADL Table 1 above.")
    bernoulli.criterion3_section(ctx)
    real.real_section(ctx, params.report.real_aflw2000)
    general.pictures_section(ctx)
    general.others_section(ctx)
    general.training_section(ctx)
    claims.appendix(ctx)
    return ctx.doc


def publish(staging: Path, target: Path) -> None:
    """Move a finished report (report.md, report.pdf, figures/) from staging into place."""
    old = target / "figures"
    if old.exists():
        shutil.rmtree(old)
    (staging / "figures").rename(old)
    for name in ("report.md", "report.pdf"):
        os.replace(staging / name, target / name)


def write_report(params: Params, reports: Path = REPORTS, results: Path = RESULTS, crops: Path = CROPS, track: bool = True) -> Document:
    """Build the report and write report.md, report.pdf and figures/ into `reports`; with `track`,
    log them to an MLflow run of their own (stage report)."""
    reports.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=reports) as tmp:
        staging = Path(tmp)
        doc = build(params, staging, results, crops)
        (staging / "report.md").write_text(doc.markdown(staging))
        doc.pdf(staging / "report.pdf")
        if track:
            with tracking.run("report", {"stage": "report"}) as (mlflow, _):
                mlflow.log_artifact(str(staging / "report.md"))
                mlflow.log_artifact(str(staging / "report.pdf"))
                mlflow.log_artifacts(str(staging / "figures"), "figures")
        publish(staging, reports)
    return doc

