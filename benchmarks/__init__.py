"""Benchmarks of the harness (not part of the pipeline): `python -m benchmarks.<name>`."""
