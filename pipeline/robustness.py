"""Robustness stage (Bernoulli paper Fig. 10): a trained model on perturbed test images.

    python -m pipeline.robustness EXPERIMENT [--seed K]

Scores results/EXPERIMENT/seed-K/model.pt clean and under translation and occlusion, params.yaml
`robustness` (repeats, shift, occluded_area); writes robustness.json beside it and logs one
MLflow run (pipeline.analysis.robustness).
"""
import argparse

from pipeline.analysis.robustness import robustness
from pipeline.config.params import load_params
from pipeline.core.errors import cli
from pipeline.core.paths import run_dir


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml (reads results/NAME/seed-K/model.pt)")
    parser.add_argument("--seed", type=int, default=0, help="which run of the experiment (default 0)")
    args = parser.parse_args(argv)
    settings = load_params().robustness
    for test_set, e in robustness(run_dir(args.experiment, args.seed), settings)["test_sets"].items():
        shown = ", ".join(f"{kind} {e[kind]['mean']['mae']:.2f} +- {e[kind]['std']['mae']:.2f}" for kind in ("translation", "occlusion"))
        print(f"{args.experiment} on {test_set}: clean MAE {e['clean']['mae']:.2f}; {shown} deg (mean +- std of {settings.repeats})")


if __name__ == "__main__":
    main()
