"""The Bernoulli heatmap's disk radius gamma (Bernoulli paper Fig. 7): each value of
params.yaml sweeps.gamma trained once, with the Criterion I and Criterion II curves.

    python sweeps/gamma.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from sweeps.runner import main
from sweeps.studies import GAMMA

if __name__ == "__main__":
    main(GAMMA)
