"""Optuna studies of the harness, each runnable as `python sweeps/<name>.py` (README "Sweeps")."""
