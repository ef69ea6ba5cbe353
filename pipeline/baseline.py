"""Baseline stage: always predict the training set's mean pose.

    python -m pipeline.baseline

writes results/baseline/metrics.json: {protocol: {test set: evaluate's metrics}} for every
protocol an experiment of `run` uses (pipeline.analysis.baseline).
"""
from pipeline.analysis.baseline import baseline
from pipeline.config.params import load_params
from pipeline.core.errors import cli


@cli
def main():
    for protocol, tests in baseline(load_params()).items():
        for test_set, m in tests.items():
            print(f"mean-pose baseline, {protocol} on {test_set}: MAE {m['mae']:.2f} deg, n={m['n']}")


if __name__ == "__main__":
    main()
