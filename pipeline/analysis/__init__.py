"""Turning predictions into numbers: the papers' metrics, scoring and evaluating a checkpoint,
robustness to perturbations, the asymmetry analysis, the mean-pose baseline, and the statistics
that say which differences are real (means over seeds with intervals, paired comparisons, claim
verdicts)."""
