"""The Bernoulli heatmap's disk radius gamma (Bernoulli paper Fig. 7): each value of
params.yaml sweeps.gamma trained once, with the Criterion I and Criterion II curves.

    python sweeps/gamma.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from pipeline.reporting.sweep_figures import curves
from sweeps.runner import main
from sweeps.spec import Sweep

SWEEP = Sweep(name="gamma", grid=("gamma",), plot=curves)

if __name__ == "__main__":
    main(SWEEP)
