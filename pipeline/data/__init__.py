"""Datasets from raw files to batches: getting archives, reading the real formats, crop rules,
building and reading crop stores, protocols and their splits, and batches for the models."""
