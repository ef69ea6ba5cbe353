"""The three studies the harness runs (README "Sweeps"): their keys under params.yaml `sweeps`,
how a trial's values enter the base experiment, and their figure."""
from __future__ import annotations

from pipeline.reporting.sweep_figures import curves, heatmap, scatter
from sweeps.spec import Sweep


def sigma_config(values: dict) -> dict:
    return {"sigma": [values["yaw"], values["pitch"], values["roll"]]}


# DADL's alpha x beta grid (DADL Fig. 12): every cell trained once, MAE heatmaps per test set and for validation
ALPHA_BETA = Sweep(name="alpha_beta", grid=("alpha", "beta"), plot=heatmap)
# DADL's three per-angle label sigmas (unit: bins): TPE over the ranges (log scale)
SIGMA = Sweep(name="sigma", ranges=("yaw", "pitch", "roll"), prefix="sigma_", config=sigma_config, plot=scatter)
# The Bernoulli heatmap's disk radius gamma (Bernoulli Fig. 7): Criterion I and II curves
GAMMA = Sweep(name="gamma", grid=("gamma",), plot=curves)
