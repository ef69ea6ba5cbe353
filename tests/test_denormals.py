import torch

from benchmarks.denormals import TINY, denormal_share
from pipeline.engine.loader import prepare_model


def test_cpu_models_run_with_denormals_flushed_to_zero():
    """prepare_model on CPU turns flushing on: a product below float32's smallest normal number is 0."""
    torch.set_flush_denormal(False)
    try:
        assert (torch.tensor([TINY]) * 0.25).item() > 0  # a denormal, kept while flushing is off
        prepare_model(torch.nn.Linear(2, 2), torch.device("cpu"))
        assert (torch.tensor([TINY]) * 0.25).item() == 0
    finally:
        torch.set_flush_denormal(True)


def test_denormal_share_counts_only_nonzero_values_below_the_smallest_normal():
    torch.set_flush_denormal(False)  # building the denormal tensor needs them kept
    try:
        weights = torch.tensor([0.0, TINY, TINY / 4, -TINY / 8, 1.0])
        state = {"w": weights, "steps": torch.tensor([3]), "b": torch.ones(3)}
        assert denormal_share(state) == (2, 8)
    finally:
        torch.set_flush_denormal(True)
