"""How many epochs does pruning save on DADL's alpha x beta grid, and does it keep the best cell?
Not a test: it trains the whole grid twice.

    python -m benchmarks.pruning [--pruner halving] [--alpha A ...] [--beta B ...] [--epochs E] [--input-size PX] [--workers N]

Runs params.yaml sweeps.alpha_beta (values given here replace its grid, epochs and
train.input_size) on the data in data/crops as two fresh studies, benchmark_pruning-<pruner> and
benchmark_pruning-none (their folders under results/sweeps/ and resume files are deleted
first), then prints the epochs each trained, their ratio, the best cell of each by final validation MAE
among its COMPLETE trials, and where the pruned search's cell ranks in the full grid. On a grid,
`halving` runs in synchronous rounds (sweeps/halving.py): a cell that goes on resumes its paused
training, so its curve is the full grid's to the last digit.
"""
import argparse
import shutil
import time

from pipeline.config.params import Params, load_params, validated
from pipeline.core.errors import cli
from pipeline.core.paths import CACHE, RESULTS
from sweeps.runner import run
from sweeps.spec import PRUNERS, read_spec
from sweeps.studies import ALPHA_BETA as SWEEP


def _best(table) -> tuple[tuple, float]:
    done = table[table.state == "COMPLETE"]
    row = done.loc[done.val_mae.idxmin()]
    return (row.alpha, row.beta), float(row.val_mae)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, nargs="+", help="grid values (default: params.yaml)")
    parser.add_argument("--beta", type=float, nargs="+", help="grid values (default: params.yaml)")
    parser.add_argument("--epochs", type=int, help="epochs per cell (default: params.yaml)")
    parser.add_argument("--input-size", type=int, help="train.input_size (default: params.yaml)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pruner", default="halving", choices=[p for p in PRUNERS if p != "none"])
    args = parser.parse_args(argv)
    raw = load_params().model_dump()
    given = {"alpha": args.alpha, "beta": args.beta, "epochs": args.epochs}
    raw["sweeps"].setdefault(SWEEP.name, {}).update({k: v for k, v in given.items() if v is not None})
    if args.input_size:
        raw["train"]["input_size"] = args.input_size
    params = validated(Params, raw, "params.yaml (with the benchmark's values)")
    spec = read_spec(SWEEP, params)
    seen = {}
    for pruner in (args.pruner, "none"):
        name = f"benchmark_pruning-{pruner}"
        shutil.rmtree(RESULTS / "sweeps" / name, ignore_errors=True)
        for state in (CACHE / "resume").glob(f"{name}-*"):  # resume states and their run-id files
            state.unlink()
        t0 = time.time()
        _, table = run(SWEEP, {**spec, "pruner": pruner}, params, workers=args.workers, name=name)
        seen[pruner] = (table, time.time() - t0)

    print(f"\ngrid alpha {spec['grid']['alpha']} x beta {spec['grid']['beta']}, {spec['epochs']} epochs per cell, "
          f"input {params.train.input_size[0]} px, experiment {spec['experiment']}")
    for pruner, (table, seconds) in seen.items():
        cell, mae = _best(table)
        print(f"{pruner + ' pruner' if pruner != 'none' else 'no pruner':>15}: {len(table)} cells, {(table.state == 'PRUNED').sum()} pruned, {table.epochs.sum()} epochs, "
              f"{seconds / 60:.1f} min; best alpha={cell[0]:g} beta={cell[1]:g} (validation MAE {mae:.2f} deg)")
    pruned, full = (seen[p][0] for p in (args.pruner, "none"))
    print(f"epochs with / without pruning: {pruned.epochs.sum()} / {full.epochs.sum()} = {pruned.epochs.sum() / full.epochs.sum():.2f}")
    print(f"same best cell: {'yes' if _best(pruned)[0] == _best(full)[0] else 'no'}")
    # where the pruned search's choice stands in the full grid, against how far apart the cells are
    (alpha, beta), _ = _best(pruned)
    ranked = full.sort_values("val_mae").reset_index(drop=True)
    chosen = ranked[(ranked.alpha == alpha) & (ranked.beta == beta)]
    print(f"the pruned search's cell in the full grid: rank {chosen.index[0] + 1} of {len(ranked)}, validation MAE "
          f"{chosen.val_mae.iloc[0]:.2f} against the best {ranked.val_mae.iloc[0]:.2f} (+{chosen.val_mae.iloc[0] - ranked.val_mae.iloc[0]:.2f}); "
          f"the full grid's cells span {ranked.val_mae.iloc[0]:.2f} to {ranked.val_mae.iloc[-1]:.2f} deg")


if __name__ == "__main__":
    main()
