"""Several processes training one model: `torchrun --nproc_per_node=N -m pipeline.train NAME`.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; the training loop then wraps the model in
DistributedDataParallel (NCCL on GPUs, gloo on CPU), gives each process every N-th batch of the
epoch's shuffled order, and lets only rank 0 validate, log to MLflow and write checkpoints.
Each process keeps the per-process batch size, so the effective batch is N times larger.
Without torchrun nothing changes.
"""
from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace

import torch
import torch.distributed as dist

from pipeline.engine import tracking
from pipeline.engine.inference import device


def setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process; joins the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dist.get_rank(), world, dev


def wrap(model: torch.nn.Module, world: int, dev: torch.device) -> torch.nn.Module:
    """The module to call forward on: DistributedDataParallel under torchrun, else the model."""
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def shard(steps: list, rank: int, world: int) -> list:
    """This process's batches: every world-th, cut to a common count so all ranks step together."""
    usable = len(steps) // world * world if world > 1 else len(steps)
    return steps[rank:usable:world]


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def finish(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class _Silent:
    """Stands in for mlflow on ranks other than 0: logs nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def tracked_run(rank: int, *args, **kwargs):
    """tracking.run on rank 0; a silent stand-in elsewhere."""
    if rank == 0:
        with tracking.run(*args, **kwargs) as pair:
            yield pair
    else:
        yield _Silent(), SimpleNamespace(info=SimpleNamespace(run_id=None))
