"""Turning predictions into numbers: the papers' metrics, scoring and evaluating a checkpoint,
robustness to perturbations, the asymmetry analysis and the mean-pose baseline."""
