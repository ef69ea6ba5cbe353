"""Report stage: reports/report.md and reports/report.pdf, the papers' numbers beside ours.

    python -m pipeline.report

Every row says where its numbers come from: the paper (typed from the PDF, in
pipeline/paper_values.yaml) or this harness (read from results/*/metrics.json, with the
MLflow run id). An experiment without results says "not run" and gives the command.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from pipeline.document import Document  # noqa: E402
from pipeline.errors import DataError, cli  # noqa: E402
from pipeline.params import experiment_config, load_params  # noqa: E402
from pipeline.paths import CROPS, REPORTS, experiment_dir  # noqa: E402
from pipeline.tracking import git_commit  # noqa: E402

PAPER_VALUES = Path(__file__).parent / "paper_values.yaml"
HEADER = ["Method", "Yaw", "Pitch", "Roll", "MAE", "Source", "Data", "MLflow run"]
WIDTHS = [38, 14, 14, 14, 14, 40, 100, 40]


def fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def read_metrics(name: str) -> dict | None:
    path = experiment_dir(name) / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DataError(f"{path}: not valid JSON; re-run `dvc repro evaluate@{name}`") from None


def dataset_description(name: str) -> str:
    meta_path = CROPS / name / "meta.json"
    if not meta_path.is_file():
        return name
    meta = json.loads(meta_path.read_text())
    kind = "synthetic (built-in renderer) " if meta.get("source") == "synthetic" else "real "
    return f"{kind}{name} (n={meta['n']}, {meta['n_filtered']} filtered out)"


def describe(config: dict) -> str:
    return f"{config['model']} {config.get('backbone', '')}, {config['input_size']} px, {config['epochs']} epochs".replace("  ", " ")


def comparison_rows(paper: dict, test_set: str, experiments: dict, baseline: dict | None) -> list[list[str]]:
    rows = [[m, *(fmt(v) for v in vals), f"{paper['paper']}, {paper['label']}", paper["data"], "-"] for m, vals in paper["rows"].items()]
    for name, config in experiments.items():
        protocol = config["protocol"]
        if protocol["train"] != "300w_lp" or test_set not in protocol["test"]:
            continue
        metrics = read_metrics(name)
        trained_on = f"trained on {dataset_description(protocol['train'])}"
        if metrics is None or test_set not in metrics:
            rows.append([f"{name}: {describe(config)}", "not run", "", "", "", "this harness", f"not run yet: dvc exp run -S 'run=[{name}]'", "-"])
            continue
        m = metrics[test_set]
        rows.append([f"{name}: {describe(config)}", fmt(m["yaw"]), fmt(m["pitch"]), fmt(m["roll"]), fmt(m["mae"]), "this harness",
                     f"{dataset_description(test_set)}; {trained_on}", m.get("run_id", "-")])
    m = (baseline or {}).get("p1", {}).get(test_set)
    if m:
        rows.append(["predict the training mean pose", fmt(m["yaw"]), fmt(m["pitch"]), fmt(m["roll"]), fmt(m["mae"]), "this harness (baseline)",
                     f"{dataset_description(test_set)}", "-"])
    return rows


def training_curves(experiments: dict, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    drawn = False
    for name in experiments:
        log = experiment_dir(name) / "train_log.csv"
        if log.is_file():
            df = pd.read_csv(log)
            if "val_mae" in df:
                ax.plot(df["epoch"], df["val_mae"], marker="o", label=name)
                drawn = True
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MAE (deg)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return drawn


def build(params: dict, out: Path) -> Document:
    experiments = {name: experiment_config(params, name) for name in params["experiments"]}
    paper = yaml.safe_load(PAPER_VALUES.read_text())
    baseline = read_metrics("baseline")
    doc = Document("Head pose benchmark report")
    doc.text(f"Generated {datetime.date.today().isoformat()} from commit {git_commit()}. Paper rows are the numbers printed in the papers; "
             "rows marked 'this harness' were measured by this pipeline on the data named in their row. "
             "Synthetic test sets are not the real datasets: compare methods within this harness, not against the paper's absolute values.")
    for key, test_set in (("dadl_table1", "aflw2000"), ("dadl_table2", "biwi")):
        table = paper[key]
        doc.heading(f"DADL {table['label']}: {test_set.upper()} after training on 300W-LP")
        doc.table(HEADER, comparison_rows(table, test_set, experiments, baseline), WIDTHS)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    if training_curves(experiments, figures / "training_curves.png"):
        doc.heading("Training")
        doc.image(figures / "training_curves.png", "Validation MAE per epoch (held-out groups of the training set).")
    return doc


def publish(staging: Path, target: Path) -> None:
    """Move a finished report (report.md, report.pdf, figures/) from staging into place."""
    old = target / "figures"
    if old.exists():
        shutil.rmtree(old)
    (staging / "figures").rename(old)
    for name in ("report.md", "report.pdf"):
        os.replace(staging / name, target / name)


@cli
def main():
    params = load_params()
    REPORTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=REPORTS) as tmp:
        staging = Path(tmp)
        doc = build(params, staging)
        (staging / "report.md").write_text(doc.markdown(staging))
        doc.pdf(staging / "report.pdf")
        publish(staging, REPORTS)
    print(f"report written to {REPORTS / 'report.md'} and {REPORTS / 'report.pdf'}")


if __name__ == "__main__":
    main()
