"""Train stage: python -m pipeline.train EXPERIMENT  (an experiment named in params.yaml)."""
from __future__ import annotations

import argparse

from pipeline.asymmetry import resolve_sigma
from pipeline.errors import cli
from pipeline.params import experiment_config, load_params
from pipeline.paths import experiment_dir
from pipeline.training import train_experiment


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml")
    args = parser.parse_args(argv)
    config = resolve_sigma(experiment_config(load_params(), args.experiment))
    result = train_experiment(config, experiment_dir(args.experiment))
    if result["run_id"]:  # rank 0 (or the only process)
        print(f"{args.experiment}: trained, MLflow run {result['run_id']}, validation MAE {result.get('val_mae', float('nan')):.2f} deg")


if __name__ == "__main__":
    main()
