"""Train stage: python -m pipeline.train EXPERIMENT [--seed K]

Trains the experiment resolved in results/EXPERIMENT/config.json (the configure stage) with seed
K (default: its own, train.seed) and writes results/EXPERIMENT/seed-K/model.pt and train_log.csv.
Runs under torchrun too (pipeline.engine.distributed); resumes after a crash from its last
finished epoch.
"""
import argparse
import json

from pipeline.config.experiment import load_experiment
from pipeline.core.errors import DataError, cli
from pipeline.core.paths import experiment_config_file, run_dir
from pipeline.engine.training import train_experiment


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml")
    parser.add_argument("--seed", type=int, help="the run's seed (default: the experiment's train.seed)")
    args = parser.parse_args(argv)
    path = experiment_config_file(args.experiment)
    if not path.is_file():
        raise DataError(f"{path}: missing; resolve the experiment first: `dvc repro configure@{args.experiment}` "
                        f"(or python -m pipeline.configure {args.experiment})")
    exp = load_experiment(json.loads(path.read_text()), str(path))
    exp = exp.for_seed(exp.seed if args.seed is None else args.seed)
    result = train_experiment(exp, run_dir(args.experiment, exp.seed))
    if result["run_id"]:  # rank 0 (or the only process)
        print(f"{args.experiment} seed {exp.seed}: trained, MLflow run {result['run_id']}, "
              f"validation MAE {result.get('val_mae', float('nan')):.2f} deg")


if __name__ == "__main__":
    main()
