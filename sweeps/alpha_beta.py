"""DADL's alpha x beta grid (DADL paper Fig. 12): every cell of params.yaml sweeps.alpha_beta
trained once (GridSampler), MAE heatmaps per test set and for validation.

    python sweeps/alpha_beta.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from sweeps.runner import main
from sweeps.studies import ALPHA_BETA

if __name__ == "__main__":
    main(ALPHA_BETA)
