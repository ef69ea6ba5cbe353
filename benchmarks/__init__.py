"""Benchmarks: scripts that measure this machine and print ratios measured in one run
(`python -m benchmarks.<name>`: throughput, crop_memory, pruning, render); never timed
assertions in the tests."""
