"""The report built from fabricated result files: every table cell traced back to the file it
came from, paper rows carrying the paper's values and labelled as the paper's, missing runs
shown as "not run" with their command; and the robustness stage's perturbations."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from pipeline.analysis import robustness
from pipeline.config.params import load_params
from pipeline.data.store import write_store
from pipeline.reporting import figures as report_figures, paper as report_paper, tables as report_tables
from pipeline.reporting.build import load_layout, write_report

PAPER = yaml.safe_load(report_paper.PAPER_VALUES.read_text())
fmt_paper, percent = report_paper.fmt_paper, report_tables.percent


def metrics(seed: float, n: int = 40, **extra) -> dict:
    return {"yaw": 10 + seed, "pitch": 11 + seed, "roll": 12 + seed, "mae": 11 + seed, "n": n, "n_filtered": 3,
            "source": "synthetic", "run_id": f"run{seed:g}", **extra}


def criteria(offset: float) -> dict:
    thresholds = [float(t) for t in np.arange(0.5, 30.01, 0.5)]
    rows = [{"angle": a, "lo": lo, "hi": lo + 10, "n": 5, "share": 0.1, "mae": offset + lo / 10} for a in ("yaw", "pitch", "roll")
            for lo in range(0, 99, 10)]
    return {"criterion_2": {"thresholds": thresholds, "share": [min(1.0, t / 10 + offset / 100) for t in thresholds]}, "criterion_3": rows}


def write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


SPLIT = {"by": "sequence", "train": ["01", "03"], "test": ["02"]}
ROBUST = {"run_id": "robustrun", "repeats": 5, "test_sets": {"biwi": {
    "n": 40, "clean": {"yaw": 1, "pitch": 2, "roll": 3, "mae": 2.0},
    "translation": {"description": "t", "repeats": [], "mean": {"yaw": 2, "pitch": 3, "roll": 4, "mae": 3.25}, "std": {"yaw": 0, "pitch": 0, "roll": 0, "mae": 0.5}},
    "occlusion": {"description": "o", "repeats": [], "mean": {"yaw": 5, "pitch": 6, "roll": 7, "mae": 6.0}, "std": {"yaw": 0, "pitch": 0, "roll": 0, "mae": 0.25}}}}}
FIT = {"fits": {a: {"sigma": s, "method": "least squares", "split": {"sigma_left": s - 1, "sigma_right": s + 1}}
                for a, s in (("yaw", 20.0), ("pitch", 30.0), ("roll", 10.0))},
       "sigma_bins": [1.0, 1.5, 0.5], "mean_sigma": 1.0, "lenet_run_id": "lenetrun", "dataset": "300w_lp"}


BARS: dict = {}  # figure file name -> (panels, errors) given to figures.grouped_bars by the `built` report
SEEDED = {"hard_label": 4.0, "wo": 9.0}  # experiments written with three seeds: error level of each


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    results, crops, out = tmp / "results", tmp / "crops", tmp / "reports"
    write(results / "dadl" / "seed-0" / "metrics.json", {"aflw2000": metrics(1), "biwi": metrics(2)})
    write(results / "dadl" / "seed-0" / "criteria.json", {"aflw2000": criteria(1), "biwi": criteria(2)})
    write(results / "bernoulli_at_nbg" / "seed-0" / "metrics.json", {"biwi": metrics(3, split=SPLIT)})
    write(results / "bernoulli_at_nbg" / "seed-0" / "criteria.json", {"biwi": criteria(3)})
    write(results / "bernoulli_at_nbg" / "seed-0" / "robustness.json", ROBUST)
    write(results / "baseline" / "metrics.json", {"p1": {"aflw2000": metrics(20), "biwi": metrics(21)}, "p2": {"biwi": metrics(22)}})
    write(results / "asymmetry" / "fit.json", FIT)
    write(results / "sweeps" / "alpha_beta" / "results.csv",
          "number,state,alpha,beta,val_mae,aflw2000_mae,biwi_mae,epochs,train_run_id,evaluate_run_id\n"
          "0,COMPLETE,1,1,5.0,9.0,8.0,4,t0,e0\n1,COMPLETE,3,3,4.0,7.5,8.5,4,t1,e1\n2,PRUNED,1,3,6.0,,,2,t2,\n")
    Image.new("RGB", (60, 20), "white").save(results / "asymmetry" / "similarity.png")
    rng = np.random.default_rng(0)
    n = 12
    labels = pd.DataFrame({"sample_id": [f"image{i:05d}" for i in range(n)], "yaw": rng.uniform(-60, 60, n), "pitch": 0.0, "roll": 0.0,
                           "sequence": "", "group": [str(i) for i in range(n)], "cx": 36.0, "cy": 36.0, "bx0": 0, "by0": 0, "bx1": 1, "by1": 1})
    write_store(crops / "aflw2000", rng.integers(0, 255, (n, 72, 72, 3), dtype=np.uint8), labels,
                {"dataset": "aflw2000", "source": "synthetic", "n": n, "n_read": n + 3, "n_filtered": 3, "rule": "hopenet", "store_size": [72, 72]})
    write(crops / "300w_lp" / "meta.json", {"dataset": "300w_lp", "source": "/data/300W_LP", "n": 100, "n_read": 104, "n_filtered": 4})
    write(crops / "110px" / "300w_lp" / "meta.json", {"dataset": "300w_lp", "source": "/data/300W_LP", "n": 100, "n_read": 104,
                                                      "n_filtered": 4, "store_size": [110, 110]})
    pred = labels[["sample_id", "sequence"]].copy()
    for a in ("yaw", "pitch", "roll"):
        pred[f"true_{a}"] = labels[a]
        pred[f"pred_{a}"] = labels[a] + rng.normal(0, 5, n)
        pred[f"err_{a}"] = (pred[f"pred_{a}"] - pred[f"true_{a}"]).abs()
    (results / "dadl" / "seed-0" / "predictions").mkdir(parents=True)
    pred.to_csv(results / "dadl" / "seed-0" / "predictions" / "aflw2000.csv", index=False)
    for name, offset in SEEDED.items():  # three seeds each, on the same AFLW2000 samples: an interval and a claim to check
        for seed in range(3):
            errors = np.abs(rng.normal(offset + 0.3 * seed, 1.0, (n, 3)))
            table = pd.DataFrame({"sample_id": labels.sample_id, "sequence": ""})
            for i, a in enumerate(("yaw", "pitch", "roll")):
                table[f"true_{a}"], table[f"pred_{a}"], table[f"err_{a}"] = 0.0, errors[:, i], errors[:, i]
            folder = results / name / f"seed-{seed}"
            (folder / "predictions").mkdir(parents=True)
            table.to_csv(folder / "predictions" / "aflw2000.csv", index=False)
            mae = errors.mean(axis=0)
            write(folder / "metrics.json", {"aflw2000": {"yaw": mae[0], "pitch": mae[1], "roll": mae[2], "mae": mae.mean(), "n": n,
                                                         "n_filtered": 0, "source": "synthetic", "run_id": f"{name}{seed}"}})
    draw = report_figures.grouped_bars

    def spy(panels, groups, path, *args, **kwargs):  # what each bar figure was asked to draw
        BARS[path.name] = (panels, kwargs.get("errors"))
        return draw(panels, groups, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report_figures, "grouped_bars", spy)
        doc = write_report(load_params(), out, results, crops, track=False)
    return doc, out


def cells(table, first: str) -> list[str]:
    return table.row(first)[1:]


def harness_label(table, name: str) -> str:
    return next(r[0] for r in table.rows if r[0].startswith(f"{name} ("))


def test_paper_rows_carry_the_papers_values_and_are_labelled_as_the_papers(built):
    doc, _ = built
    tables = doc.tables()
    for key, order in (("dadl_table1", None), ("dadl_table2", None), ("dadl_table3", None), ("bernoulli_table2", (1, 0, 2, 3))):
        table = tables[key]
        for method, values in PAPER[key]["rows"].items():
            row = cells(table, method)
            shown = [values[i] for i in order] if order else values  # Table II is printed pitch, yaw, roll, MAE
            assert row[:4] == [fmt_paper(v) for v in shown] and row[4] == "", (key, method)
            assert row[5].startswith("paper: ") and PAPER[key]["label"] in row[5]
            assert table.kinds[table.rows.index(table.row(method))] == "paper"
    t4 = tables["dadl_table4"]
    printed = [fmt_paper(v) for v in PAPER["dadl_table4"]["rows"]["ResNet50"]]
    assert cells(t4, "ResNet50")[:10] == [*printed[:4], "", *printed[4:], ""]
    assert cells(tables["dadl_table5"], "GSoft-label")[:4] == ["5.08", "", "4.94", ""]
    # no paper value is shown as the harness's: every row whose Source is not a paper's is read from a file
    for table in tables.values():
        if "Source" in table.header:
            for row, kind in zip(table.rows, table.kinds):
                assert (kind == "paper") == row[table.header.index("Source")].startswith("paper")


def test_harness_rows_come_from_the_result_files(built):
    doc, _ = built
    tables = doc.tables()
    t1 = tables["dadl_table1"]
    assert cells(t1, harness_label(t1, "dadl")) == ["11.00", "12.00", "13.00", "12.00", "1 seed, no interval", "harness", "run1"]
    assert cells(t1, "predict the training mean pose (protocol p1)")[:4] == ["30.00", "31.00", "32.00", "31.00"]
    assert "495" not in t1.note and "40 samples scored" in t1.note and "synthetic" in t1.note
    t2 = tables["dadl_table2"]
    assert cells(t2, harness_label(t2, "dadl"))[:4] == ["12.00", "13.00", "14.00", "13.00"]
    t3 = tables["dadl_table3"]
    assert cells(t3, harness_label(t3, "bernoulli_at_nbg")) == ["13.00", "14.00", "15.00", "14.00", "1 seed, no interval", "harness", "run3"]
    assert cells(t3, "predict the training mean pose (protocol p2)")[:4] == ["32.00", "33.00", "34.00", "33.00"]
    assert "train 01, 03 / test 02" in t3.note
    t4 = tables["dadl_table4"]
    assert cells(t4, harness_label(t4, "dadl"))[:10] == ["11.00", "12.00", "13.00", "12.00", "1 seed, no interval",
                                                          "12.00", "13.00", "14.00", "13.00", "1 seed, no interval"]
    t5 = tables["dadl_table5"]
    assert cells(t5, harness_label(t5, "dadl"))[:4] == ["12.00", "1 seed, no interval", "13.00", "1 seed, no interval"]
    assert "harness addition" in harness_label(t5, "dadl_asym")
    tb = tables["bernoulli_table2"]
    assert cells(tb, harness_label(tb, "bernoulli_at_nbg"))[:4] == ["13.00", "14.00", "15.00", "14.00"]


def test_rows_not_run_say_so_and_give_the_command(built):
    doc, _ = built
    tables = doc.tables()
    for key, name in (("dadl_table1", "hopenet_a1"), ("dadl_table3", "dadl_p2"), ("dadl_table5", "gsoft"),
                      ("bernoulli_table2", "bernoulli_bg"), ("bernoulli_fig11", "bernoulli_at_nbg_8_16"), ("bernoulli_fig12", "bernoulli_p1")):
        row = tables[key].row(harness_label(tables[key], name))
        assert row[1] == "not run" and row[-1] == f"dvc exp run -S 'run=[{name}]'", (key, row)
    gamma = tables["bernoulli_gamma"]
    assert gamma.row("sweep gamma")[-1] == "python sweeps/gamma.py"
    assert gamma.row(harness_label(gamma, "bernoulli_at_nbg_g2"))[2] == "not run"
    robust = tables["bernoulli_fig10"]
    assert robust.row(harness_label(robust, "bernoulli_nbg"))[-1] == "dvc exp run -S 'run=[bernoulli_nbg]'"
    shown = " ".join(" ".join(r) for t in tables.values() for r in t.rows) + " ".join(b.text for b in doc.blocks if hasattr(b, "text"))
    for name in load_params().experiments:  # never silently missing
        assert name in shown, name


def test_sweep_robustness_asymmetry_criteria_and_data_tables(built):
    doc, _ = built
    tables = doc.tables()
    fig12 = tables["dadl_fig12"]
    best = {r[1]: r for r in fig12.rows if r[0] == "alpha_beta"}
    assert best["validation"][2:5] == ["3", "3", "4.00"] and best["aflw2000"][2:5] == ["3", "3", "7.50"]
    assert best["aflw2000"][6] == "3, 3" and best["biwi"][6] == "1, 2" and best["biwi"][2:5] == ["1", "1", "8.00"]
    assert best["aflw2000"][5] == "2 / 1" and best["aflw2000"][7] == "e1"
    robust = tables["bernoulli_fig10"]
    assert cells(robust, harness_label(robust, "bernoulli_at_nbg")) == ["biwi", "0", "40", "2.00", "3.25 ± 0.50", "6.00 ± 0.25", "5", "robustrun"]
    asym = tables["asymmetry"]
    assert asym.row("pitch")[1:] == ["30.0", "29.0 / 31.0", "least squares", "1.500", "0.68 / 0.14", "2", "0.6"]
    gamma = tables["bernoulli_gamma"]
    row = gamma.row(harness_label(gamma, "bernoulli_at_nbg"))
    assert row[1:6] == ["4", "13.00", "14.00", "15.00", "14.00"]
    share = dict(zip(criteria(3)["criterion_2"]["thresholds"], criteria(3)["criterion_2"]["share"]))
    assert row[6:8] == [percent(share[3.0]), percent(share[5.0])]
    data = tables["data"]
    assert data.row("aflw2000")[1:5] == ["synthetic (built-in renderer)", "15", "12", "3"]
    assert data.row("300w_lp")[1] == "real, see [1]" and "/data/300W_LP" in data.note
    assert data.row("300w_lp (110px)")[1] == "real, see [2]" and data.row("300w_lp (110px)")[-1] == "110x110"  # crop.extra_store_sizes


def test_computed_notes_on_the_papers_numbers():
    notes = " ".join(report_paper.paper_notes(PAPER, "dadl_table2"))
    assert "FAN" in notes and "WHENet" in notes and "HopeNet (alpha=2)" in notes and "Dlib" not in notes
    cross = " ".join(report_paper.paper_notes(PAPER, "bernoulli_table2"))
    assert "VGG16+RNN (RGB+Time)" in cross and "Martin (RGB+Depth)" in cross and "SSR-Net-MD:" not in cross


def test_markdown_pdf_and_figures_are_written(built):
    _, out = built
    md = (out / "report.md").read_text()
    assert "## DADL (Zhao et al. 2023)" in md and "| Dlib | 23.1 | 13.6 | 10.5 | 15.8 |  | paper: DADL Table 1 |" in md
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    for line in md.splitlines():
        if line.startswith("!["):
            assert (out / line[line.index("](") + 2 : -1]).is_file(), line
    assert (out / "figures" / "predictions_dadl_aflw2000.png").is_file()
    assert (out / "figures" / "bernoulli_fig10_robustness.png").is_file()


def test_perturbations_shift_with_zero_fill_and_occlude_a_share():
    images = torch.ones(64, 3, 40, 40)
    moved = robustness.translate(np.random.default_rng(0), 0.10)(images)
    assert moved.shape == images.shape and moved.min() == 0 and moved.mean() < 1
    blank = 1 - moved.mean(dim=(1, 2, 3))  # zero-filled border share, at most 2 x 10% of a side
    assert float(blank.max()) <= 1 - 0.9 * 0.9 + 1e-6
    covered = 1 - robustness.occlude(np.random.default_rng(0), (0.10, 0.25))(images).mean(dim=(1, 2, 3))
    assert 0.08 <= float(covered.min()) and float(covered.max()) <= 0.27
    again = robustness.occlude(np.random.default_rng(0), (0.10, 0.25))(images)
    assert torch.equal(again, robustness.occlude(np.random.default_rng(0), (0.10, 0.25))(images))  # seeded: repeatable
    summary = robustness.summarise([{"yaw": 1, "pitch": 1, "roll": 1, "mae": 1.0}, {"yaw": 3, "pitch": 3, "roll": 3, "mae": 3.0}])
    assert summary["mean"]["mae"] == 2.0 and summary["std"]["mae"] == pytest.approx(np.std([1.0, 3.0], ddof=1))


def test_layout_names_only_experiments_params_defines():
    """Which experiment fills which paper row is data (layout.yaml): a rename in params.yaml that
    the layout does not follow fails here instead of moving a row silently."""
    defined = set(load_params().experiments)
    layout = load_layout()
    named = {n for key, names in layout.items() if key != "additions" for n in names} | set(layout["additions"])
    assert named <= defined, sorted(named - defined)


def per_seed_mae(files) -> list[float]:
    return [float(pd.read_csv(f)[["err_yaw", "err_pitch", "err_roll"]].to_numpy().mean()) for f in files]


def test_several_seeds_give_the_mean_and_a_95_percent_interval(built):
    doc, _ = built
    t5 = doc.tables()["dadl_table5"]
    row = cells(t5, harness_label(t5, "wo"))
    folders = [p for p in sorted((built[1].parent / "results" / "wo").glob("seed-*"))]
    mean = np.mean(per_seed_mae([f / "predictions" / "aflw2000.csv" for f in folders]))
    assert row[0] == f"{mean:.2f}"
    lo, hi = (float(v) for v in row[1].split("]")[0].strip("[").split(", "))
    assert lo < mean < hi and row[1].endswith("3 seeds")
    assert "and 2 more (one per seed" in row[-1]
    appendix = doc.tables()["appendix"]
    assert {r[1] for r in appendix.rows if r[0] == "wo"} == {"0", "1", "2"}


def test_claims_table_opens_the_report_and_traces_back_to_the_files_it_read(built):
    doc, out = built
    claims = doc.tables()["claims"]
    assert list(doc.tables())[0] == "claims"  # the first table of the report
    row_index = next(i for i, r in enumerate(claims.rows) if r[0] == "dadl_t5_hard_vs_wo_aflw2000")
    row = claims.rows[row_index]
    files = claims.sources[row_index]
    hard = per_seed_mae([f for f in files if "/hard_label/" in f])
    wo = per_seed_mae([f for f in files if "/wo/" in f])
    assert len(hard) == len(wo) == 3
    difference = np.mean(hard) - np.mean(wo)
    assert row[5].startswith(f"{difference:+.2f} [") and "(seeds 3/3)" in row[5]
    assert row[4].startswith("-0.24") and row[6] == "supported"  # the simulated hard_label errors are clearly lower
    not_run = next(r for r in claims.rows if r[0] == "dadl_t5_dadl_vs_gsoft_aflw2000")
    assert not_run[6] == "not run" and not_run[-1] == "dvc exp run -S 'run=[gsoft]'"
    one_seed = next(r for r in claims.rows if r[0] == "dadl_t5_dadl_vs_wo_aflw2000")
    assert one_seed[6] == "not resolved" and "no interval" in one_seed[5]
    assert "## Claims: the papers' comparisons checked on the harness" in (out / "report.md").read_text()


def test_describe_names_frozen_layers_weight_average_flip_test_and_pitch_view():
    from tests.support import experiment  # noqa: PLC0415

    exp = experiment("s", "dadl", backbone="mobilenet_v2", pretrained=True, frozen_stride=16, test_flip=True, input_size=96, epochs=20,
                     ema=0.999, pitch_view=64)
    assert report_tables.describe("s", exp) == ("s (dadl, mobilenet_v2 pretrained, frozen to stride 16, 96 px, 20 ep, weight average 0.999, "
                                                "flip test, pitch from a 64 px view)")
    assert report_tables.describe("d", experiment("d", "dadl", epochs=10)) == "d (dadl, resnet18, 32 px, 10 ep)"


def test_ablation_figure_whiskers_are_half_the_seed_intervals(built):
    """DADL Fig. 11 draws each seeded experiment's per-angle 95% interval (half its width as a
    whisker, the MAE's the same as Table 5's interval cell) and no whisker for one seed."""
    doc, _ = built
    panels, errors = BARS["dadl_fig11_ablation.png"]
    t5 = doc.tables()["dadl_table5"]
    for name in SEEDED:
        whiskers = errors["AFLW2000"][name]
        assert len(whiskers) == 4 and all(w > 0 for w in whiskers), (name, whiskers)
        lo, hi = (float(v) for v in cells(t5, harness_label(t5, name))[1].split("]")[0].strip("[").split(","))
        assert whiskers[3] == pytest.approx((hi - lo) / 2, abs=0.006)
        assert panels["AFLW2000"][name][3] == pytest.approx(float(cells(t5, harness_label(t5, name))[0]), abs=0.006)
    assert errors["AFLW2000"]["dadl"] == [0.0] * 4  # one seed: no interval, no whisker
