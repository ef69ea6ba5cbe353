"""DADL's alpha x beta grid (DADL paper Fig. 12): every cell of params.yaml sweeps.alpha_beta
trained once (GridSampler), MAE heatmaps per test set and for validation.

    python sweeps/alpha_beta.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from pipeline.reporting.sweep_figures import heatmap
from sweeps.runner import main
from sweeps.spec import Sweep

SWEEP = Sweep(name="alpha_beta", grid=("alpha", "beta"), plot=heatmap)

if __name__ == "__main__":
    main(SWEEP)
