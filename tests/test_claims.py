"""claims.yaml: it loads, names only experiments, studies and test sets params.yaml defines, holds
the claims issue 17 asks for, agrees with the numbers typed independently in paper_values.yaml,
and the loader refuses a bad entry with one line naming the claim."""
from __future__ import annotations

import pytest
import yaml

from pipeline.core.errors import DataError
from pipeline.reporting.claims import CLAIMS, load_claims
from pipeline.reporting.paper import PAPER_VALUES, load_paper_values, paper_table
from tests.support import repo_params

REQUIRED = {
    # DADL Table 5: DADL < GSoft < Hard < w/o, on AFLW2000 and on BIWI
    *(f"dadl_t5_{pair}_{ts}" for ts in ("aflw2000", "biwi") for pair in ("dadl_vs_gsoft", "gsoft_vs_hard", "hard_vs_wo")),
    # Tables 1-2: DADL vs HopeNet alpha 1 and 2, and 6DRepNet (not in the paper: says so)
    "dadl_t1_dadl_vs_hopenet_a1_aflw2000", "dadl_t1_dadl_vs_hopenet_a2_aflw2000", "dadl_t1_dadl_vs_sixdrepnet_aflw2000",
    "dadl_t2_dadl_vs_hopenet_a1_biwi", "dadl_t2_dadl_vs_hopenet_a2_biwi",
    # Table 4 backbones, the asymmetry-fitted widths
    "dadl_t4_resnet50_vs_resnet18_aflw2000", "dadl_t4_resnet50_vs_resnet18_biwi", "dadl_asym_label_sigma_order",
    "dadl_asym_fit_sigma_order",
    # Bernoulli: AT vs no AT, nBG vs BG, gamma, 16/8 vs 12/12 vs 8/16
    "bern_at_vs_noat_nbg", "bern_nbg_vs_bg", "bern_gamma4_vs_2", "bern_gamma4_vs_6", "bern_size_16_8_vs_12_12",
    "bern_size_12_12_vs_8_16",
}

# Harness experiment -> the row of paper_values.yaml it stands for, per table
ROWS = {
    "dadl_table5": {"dadl": "DADL", "dadl_asym": "DADL", "gsoft": "GSoft-label", "hard_label": "Hard-label", "wo": "w/o"},
    "dadl_table1": {"dadl": "DADL (ResNet-50)", "hopenet_a1": "HopeNet (alpha=1)", "hopenet_a2": "HopeNet (alpha=2)"},
    "dadl_table2": {"dadl": "DADL (ResNet-50)", "hopenet_a1": "HopeNet (alpha=1)", "hopenet_a2": "HopeNet (alpha=2)"},
    "dadl_table4": {"dadl": "ResNet18", "dadl_resnet50": "ResNet50", "dadl_resnet152": "ResNet152", "dadl_mobilenet_v2": "MobileNetV2"},
}
TABLES = {"Table 5": "dadl_table5", "Table 5 (with Sec. 3.3)": "dadl_table5", "Table 1": "dadl_table1", "Table 2": "dadl_table2",
          "Table 4": "dadl_table4"}


@pytest.fixture(scope="module")
def params():
    return repo_params()


@pytest.fixture(scope="module")
def claims(params):
    return load_claims(experiments=params["experiments"], studies=params["sweeps"])


def test_claims_load_and_name_only_what_params_yaml_defines(claims, params):
    assert len(claims) >= len(REQUIRED)
    for c in claims:
        for name in c.experiments:
            assert name in params["experiments"], f"{c.id}: {name}"
        if c.kind == "sweep":
            assert c.study in params["sweeps"], c.id


def test_required_claims_exist(claims):
    missing = REQUIRED - {c.id for c in claims}
    assert not missing, f"claims.yaml lacks {sorted(missing)}"


def test_each_claim_is_on_a_test_set_its_experiments_are_scored_on(claims, params):
    """better's test set is one of its protocol's test sets (and worse's of its), so the reader
    looks for a predictions file the pipeline writes."""
    default = params["train"]["protocol"]
    for c in claims:
        for name, test_set in zip(c.experiments, c.test_sets):
            protocol = params["experiments"][name].get("protocol", default)
            assert test_set in params["protocols"][protocol]["test"], f"{c.id}: {name} ({protocol}) is not scored on {test_set}"


def test_paired_claims_compare_the_same_test_samples(claims, params):
    """Paired: both protocols draw the same test split (same split or none); unpaired: they differ."""
    default = params["train"]["protocol"]
    for c in claims:
        if c.kind != "mae":
            continue
        splits = [params["protocols"][params["experiments"][n].get("protocol", default)].get("split") for n in c.experiments]
        assert (splits[0] == splits[1]) == c.paired, f"{c.id}: paired={c.paired} but the test splits are {splits}"


def test_claims_without_numbers_say_why(claims):
    for c in claims:
        assert c.printed_status in ("printed", "figure only", "not in paper", "not attributable"), c.id
        if c.printed_status != "printed":
            assert c.printed_difference is None, c.id
        if c.printed_status in ("not in paper", "not attributable"):
            assert c.notes, f"{c.id}: say in notes why the paper gives no numbers"
    by_id = {c.id: c for c in claims}
    assert by_id["dadl_t1_dadl_vs_sixdrepnet_aflw2000"].printed_status == "not in paper"
    assert "6DRepNet" in by_id["dadl_t1_dadl_vs_sixdrepnet_aflw2000"].notes[0]


def test_printed_numbers_agree_with_paper_values_yaml(claims):
    """The two files were typed separately from the papers; where both hold a number they agree."""
    paper = load_paper_values()
    checked = 0
    for c in claims:
        key = TABLES.get(c.source)
        if c.kind != "mae" or key is None or c.printed_status != "printed":
            continue
        table = paper_table(paper, key)
        for side, value in (("better", c.printed_better), ("worse", c.printed_worse)):
            row = table["values"][ROWS[key][getattr(c, side)]]
            assert row[(c.test_sets[0], "mae")] == pytest.approx(value), f"{c.id} {side}: {value} vs {PAPER_VALUES.name} {row}"
            checked += 1
    assert checked >= 40


def test_ordering_claims_match_the_papers_sigmas(claims):
    paper = load_paper_values()["dadl_asymmetry"]
    by_id = {c.id: c for c in claims}
    label = by_id["dadl_asym_label_sigma_order"]
    for ts in ("aflw2000", "biwi"):
        assert [label.printed[ts][a] for a in ("yaw", "pitch", "roll")] == paper["label_sigma"][ts]
        assert sorted(label.printed[ts], key=lambda a: -label.printed[ts][a]) == list(label.order)
    fit = by_id["dadl_asym_fit_sigma_order"]
    assert {a: v["sigma"] for a, v in paper["similarity_fit"].items()} == fit.printed["fit"]
    assert sorted(fit.printed["fit"], key=lambda a: -fit.printed["fit"][a]) == list(fit.order)


def write(tmp_path, entries) -> str:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": entries}, sort_keys=False))
    return path


GOOD = {"id": "x_dadl_vs_wo", "paper": "DADL", "source": "Table 5", "claim": "DADL beats w/o", "better": "dadl", "worse": "wo",
        "test_set": "aflw2000", "printed": {"better": 4.67, "worse": 5.56, "difference": -0.89}}


@pytest.mark.parametrize("change, message", [
    ({"better": "dadl_r50"}, r"claim x_dadl_vs_wo: unknown experiment 'dadl_r50'; use one of params.yaml experiments"),
    ({"colour": "red"}, r"claim x_dadl_vs_wo: colour: unknown field"),
    ({"printed": {"better": 4.67, "worse": 5.56, "difference": -0.8}}, r"claim x_dadl_vs_wo: printed.difference: -0.8 is not better - worse"),
    ({"test_set": "aflw"}, r"claim x_dadl_vs_wo: test_set: unknown test set 'aflw'"),
    ({"printed": "in a figure"}, r"claim x_dadl_vs_wo: printed"),
    ({"worse": "dadl"}, r"claim x_dadl_vs_wo: better/worse: the same on both sides"),
    ({"kind": "ordering"}, r"claim x_dadl_vs_wo: result: missing"),
])
def test_a_bad_claim_is_refused_in_one_line_naming_it(tmp_path, params, change, message):
    path = write(tmp_path, [{**GOOD, **change}])
    with pytest.raises(DataError, match=message) as exc:
        load_claims(path, experiments=params["experiments"])
    assert "\n" not in str(exc.value)


def test_duplicate_ids_and_unknown_studies_are_refused(tmp_path, params):
    with pytest.raises(DataError, match="claim x_dadl_vs_wo: id used twice"):
        load_claims(write(tmp_path, [GOOD, GOOD]), experiments=params["experiments"])
    sweep = {"id": "s", "paper": "DADL", "source": "Fig. 12", "claim": "c", "kind": "sweep", "study": "alpha_gamma",
             "better": {"alpha": 3.0}, "worse": {"alpha": 2.0}, "test_set": "biwi", "printed": "figure only"}
    with pytest.raises(DataError, match="claim s: unknown study 'alpha_gamma'"):
        load_claims(write(tmp_path, [sweep]), studies=params["sweeps"])


def test_the_shipped_file_is_the_default(claims):
    assert CLAIMS.name == "claims.yaml" and [c.id for c in load_claims()] == [c.id for c in claims]
