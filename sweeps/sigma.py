"""DADL's three per-angle label sigmas (unit: bins): TPE draws params.yaml sweeps.sigma.trials
points from the yaw, pitch and roll ranges (log scale); validation MAE against each sigma.

    python sweeps/sigma.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from sweeps.runner import main
from sweeps.studies import SIGMA

if __name__ == "__main__":
    main(SIGMA)
