"""The Claims section that opens the report, and the appendix of per-seed values.

Every comparative claim of both papers (claims.yaml) is checked on the harness's runs: the
paper's difference, ours with its 95% interval over seeds and test samples, a verdict (supported,
contradicted, not resolved at this size, not run) and how many seeds would resolve a difference
of the paper's size at the noise measured (pipeline.analysis.statistics). Each row records the
prediction files it read (Table.sources), so tests can trace it back.
"""
from __future__ import annotations

from pipeline.analysis import statistics
from pipeline.core.angles import ANGLES
from pipeline.core.errors import DataError
from pipeline.reporting.claims import Claim, load_claims
from pipeline.reporting.tables import KEYS, Context, fmt, run_command

VERDICTS = ("supported", "contradicted", "not resolved", "not run")


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _ours(check: statistics.ClaimCheck) -> str:
    if check.difference is None:
        return "not run"
    seeds = "/".join(str(n) for n in check.n_seeds)
    if check.interval is None:
        return f"{check.difference:+.2f} (seeds {seeds}, no interval)"
    lo, hi = check.interval
    return f"{check.difference:+.2f} [{lo:+.2f}, {hi:+.2f}] (seeds {seeds})"


def _seeds_needed(check: statistics.ClaimCheck) -> str:
    if check.verdict == "not run":
        return "-"
    if check.seeds_needed is None and check.seeds_needed_relative is None:
        return check.seeds_note or "-"
    parts = []
    if check.seeds_needed is not None:
        parts.append(f"{check.seeds_needed} (paper's difference)")
    if check.seeds_needed_relative is not None:
        parts.append(f"{check.seeds_needed_relative} (paper's relative difference)")
    return "; ".join(parts)


def _paper(claim: Claim) -> str:
    if claim.printed_difference is None:
        return claim.printed_status if isinstance(claim.printed_status, str) and claim.printed_status != "printed" else "-"
    return f"{claim.printed_difference:+.2f} ({claim.printed_better:g} vs {claim.printed_worse:g})"


def _sweep_runs(ctx: Context, claim: Claim) -> tuple[statistics.RunErrors | None, statistics.RunErrors | None]:
    """The trial of each compared cell of a sweep (one run each), or None where the cell has no
    COMPLETE trial."""
    table = ctx.src.sweep(claim.study)
    out = []
    for cell, test_set in zip((claim.better, claim.worse), claim.test_sets):
        found = None
        if table is not None and len(table):
            done = table[table.state == "COMPLETE"]
            match = done[(done[list(cell)] == [float(v) for v in cell.values()]).all(axis=1)] if set(cell) <= set(done.columns) else done[:0]
            if len(match):
                trials = ctx.src.results / "sweeps" / claim.study / "trials"
                found = statistics.load_run_errors(trials, str(int(match.number.iloc[0])), test_set)
        out.append(found)
    return out[0], out[1]


def _check(ctx: Context, claim: Claim):
    """(ClaimCheck or OrderingCheck, files read, command that runs what is missing)."""
    if claim.kind == "ordering":
        fit = ctx.src.json(*claim.result.split("/"))
        if fit is None:
            return None, [], "dvc repro asymmetry"
        values = {}
        for a in ANGLES:
            node = fit
            for key in claim.quantity.replace("<angle>", a).split("."):
                node = node[key]
            values[a] = [float(node)]
        return statistics.check_ordering(values, claim.order), [str(ctx.src.results / claim.result)], ""
    if claim.kind == "sweep":
        better, worse = _sweep_runs(ctx, claim)
        command = f"python sweeps/{claim.study}.py"
    else:
        better = statistics.load_run_errors(ctx.src.results, claim.better, claim.test_sets[0])
        worse = statistics.load_run_errors(ctx.src.results, claim.worse, claim.test_sets[1])
        missing = [n for n, r in ((claim.better, better), (claim.worse, worse)) if r is None]
        command = run_command(", ".join(missing)) if missing else ""
    names = (str(claim.better), str(claim.worse))
    check = statistics.check_claim(better, worse, d_paper=claim.printed_difference, paper_worse=claim.printed_worse,
                                   metric=claim.metric, paired=claim.paired, names=names, test_set=claim.test_sets[0])
    files = [str(f) for r in (better, worse) if r is not None for f in r.files]
    return check, files, command if check.verdict == "not run" else ""


def claims_section(ctx: Context) -> None:
    doc = ctx.doc
    doc.heading("Claims: the papers' comparisons checked on the harness", 1)
    doc.text("Each row is a comparison one of the papers makes (pipeline/reporting/claims.yaml): 'better' should have the lower "
             "error. Paper: its printed difference (better minus worse). Ours: the same difference in the harness, mean over seeds "
             "with its 95% interval over seeds and test samples (hierarchical bootstrap, pairing test samples where both ran on "
             "the same ones). Verdict: supported (the interval lies below 0), contradicted (above 0), not resolved (it holds 0, "
             "or one seed gives no interval), not run. Seeds to resolve: how many seeds per experiment would make an interval "
             "this narrow enough to resolve a difference of the paper's size (and of the paper's size relative to its worse row, "
             "since the harness's errors are 2-4 times the papers') at the noise measured here.")
    claims = load_claims(experiments=ctx.configs, studies=ctx.sweeps)
    rows, kinds, sources, counts = [], [], {}, dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        test_set = " vs ".join(dict.fromkeys(claim.test_sets)) or "-"
        try:
            check, files, command = _check(ctx, claim)
        except DataError as exc:  # e.g. two experiments scored on different test samples: say so, keep the report
            counts["not resolved"] += 1
            rows.append([claim.id, f"{claim.paper} {claim.source}", claim.claim, test_set, _paper(claim), f"not comparable: {exc}",
                         "not resolved", "-", "dvc repro"])
            kinds.append("missing")
            continue
        if check is None:
            verdict, ours, needed = "not run", "not run", "-"
        elif isinstance(check, statistics.OrderingCheck):
            verdict = check.verdict
            ours = f"{' > '.join(check.observed)} (" + ", ".join(f"{a} {check.means[a]:.1f}" for a in ANGLES) + ")"
            needed = f"{check.n_seeds} run, no interval" if check.n_seeds < 2 else "-"
        else:
            verdict, ours, needed = check.verdict, _ours(check), _seeds_needed(check)
        counts[verdict] += 1
        sources[len(rows)] = files
        rows.append([claim.id, f"{claim.paper} {claim.source}", claim.claim, test_set, _paper(claim), ours, verdict, needed,
                     command or ("-" if verdict != "not run" else run_command(f"{claim.better}, {claim.worse}"))])
        kinds.append("missing" if verdict == "not run" else "ours")
    table = doc.table(["Claim", "Source", "What the paper claims", "Test set", "Paper", "Ours", "Verdict", "Seeds to resolve",
                       "Command to run it"], rows, key="claims", widths=[40, 26, 70, 20, 26, 44, 18, 34, 40], kinds=kinds,
                      note="Ours uses the harness's experiments as params.yaml defines them (ResNet-18 from scratch, 64 px, synthetic "
                           "data at the defaults): a verdict says whether the papers' ordering holds at this size, not on the real "
                           "datasets. " + "; ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    table.sources = sources


def appendix(ctx: Context) -> None:
    """Every run's own numbers: experiment, seed, test set, per-angle MAE, MLflow run."""
    rows = []
    for name in ctx.configs:
        for seed, metrics in ctx.src.runs(name, "metrics.json").items():
            for test_set, m in metrics.items():
                rows.append([name, str(seed), test_set, *(fmt(m[k]) for k in KEYS), str(m.get("n", "-")), m.get("run_id", "-")])
    if not rows:
        return
    ctx.doc.heading("Appendix: every run", 1)
    ctx.doc.text("One row per experiment, seed and test set (results/<experiment>/seed-<k>/metrics.json); the tables above show "
                 "the mean over seeds. `dvc metrics show` lists the same files.")
    ctx.doc.table(["Experiment", "Seed", "Test set", "Yaw", "Pitch", "Roll", "MAE", "Samples", "MLflow run"], rows, key="appendix",
                  widths=[50, 12, 24, 15, 15, 15, 15, 18, 62])

