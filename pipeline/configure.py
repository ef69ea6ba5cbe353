"""Configure stage: resolve one experiment of params.yaml into results/EXPERIMENT/config.json.

    python -m pipeline.configure EXPERIMENT

The file holds the experiment's whole configuration, checked and frozen (pipeline.config):
params.yaml `train` with the experiment's overrides, its model's hyperparameters with their
defaults, its protocol and crop settings, and for `sigma: asymmetry` the sigmas fitted by the
asymmetry stage. The train stage reads only this file, so an experiment is retrained exactly
when its own resolved configuration changes, not whenever the asymmetry fit does.
"""
import argparse

from pipeline.config.experiment import needs_fit, read_fit, resolve_experiment
from pipeline.config.params import load_params
from pipeline.core.atomic import write_json
from pipeline.core.errors import cli
from pipeline.core.paths import ASYMMETRY_FIT, experiment_config_file


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    fit = read_fit(ASYMMETRY_FIT) if needs_fit(params, args.experiment) else None
    exp = resolve_experiment(params, args.experiment, fit=fit)
    write_json(experiment_config_file(args.experiment), exp.model_dump(mode="json"))


if __name__ == "__main__":
    main()
