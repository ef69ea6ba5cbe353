"""Asymmetry stage (DADL Figs. 1, 4, 5): LeNet features, similarity curves along each angle and
the Gaussians fitted to them (pipeline.analysis.asymmetry).

    python -m pipeline.asymmetry

writes results/asymmetry/fit.json (the fitted widths and the label sigmas an experiment with
`sigma: asymmetry` takes) and similarity.png.
"""
from pipeline.analysis.asymmetry import analyse
from pipeline.config.params import load_params
from pipeline.core.angles import ANGLES
from pipeline.core.errors import cli


@cli
def main():
    fit = analyse(load_params())
    widths = ", ".join(f"{a} {fit['fits'][a]['sigma']:.1f} deg" for a in ANGLES)
    print(f"similarity widths: {widths}; label sigmas (bins): {[round(s, 3) for s in fit['sigma_bins']]}")


if __name__ == "__main__":
    main()
