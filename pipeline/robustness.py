"""Robustness stage (Bernoulli paper Fig. 10): a trained model on perturbed test images.

    python -m pipeline.robustness EXPERIMENT

Scores results/EXPERIMENT/model.pt clean and under translation and occlusion, params.yaml
`robustness` (repeats, shift, occluded_area); writes results/EXPERIMENT/robustness.json and logs
one MLflow run (pipeline.analysis.robustness).
"""
import argparse

from pipeline.analysis.robustness import robustness
from pipeline.config.params import load_params
from pipeline.core.errors import cli
from pipeline.core.paths import experiment_dir


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml (reads results/NAME/model.pt)")
    args = parser.parse_args(argv)
    settings = load_params().robustness
    for test_set, e in robustness(experiment_dir(args.experiment), settings)["test_sets"].items():
        shown = ", ".join(f"{kind} {e[kind]['mean']['mae']:.2f} +- {e[kind]['std']['mae']:.2f}" for kind in ("translation", "occlusion"))
        print(f"{args.experiment} on {test_set}: clean MAE {e['clean']['mae']:.2f}; {shown} deg (mean +- std of {settings.repeats})")


if __name__ == "__main__":
    main()
