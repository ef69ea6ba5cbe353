"""DADL's three per-angle label sigmas (unit: bins): TPE draws params.yaml sweeps.sigma.trials
points from the yaw, pitch and roll ranges (log scale); validation MAE against each sigma.

    python sweeps/sigma.py [--workers N] [--storage URL]
"""
import _root  # noqa: F401
from pipeline.reporting.sweep_figures import scatter
from sweeps.runner import main
from sweeps.spec import Sweep


def sigma_config(values: dict) -> dict:
    return {"sigma": [values["yaw"], values["pitch"], values["roll"]]}


SWEEP = Sweep(name="sigma", ranges=("yaw", "pitch", "roll"), prefix="sigma_", config=sigma_config, plot=scatter)

if __name__ == "__main__":
    main(SWEEP)
