"""Feeding a model: batches cut from the memory-mapped store as uint8 by a few threads (the parts
of one batch in parallel), prepared ahead in a background thread on CUDA, handed over in pinned
memory with non-blocking copies, made float on the device, and the model run under the chosen
precision.

    for images, targets in Loader(store, plans, device):
        with autocast(device, "bf16"):
            outputs = model(images)

A batch's randomness is drawn when it is planned (pipeline.data.batches.plan_batch), in order, in
the calling thread, so threads change nothing in what a batch holds: the batches are bit for bit
those of the loop without them. numpy releases the GIL while it copies, so the threads cut in
parallel. `prefetch: auto` prepares 2 batches ahead on CUDA, where the CPU would otherwise idle
while the GPU works, and none on the CPU, where the model's own threads already fill every core
and a background thread has nothing to overlap with (benchmarks/throughput.py measures both;
on a 2-core CPU their difference was within the run-to-run noise of about 5 %).
"""
from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import numpy as np
import torch

from pipeline.data import augment
from pipeline.data.batches import BatchPlan, batch_targets, cut_batch, to_unit_float
from pipeline.data.store import Store

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_for(setting: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA, fp32 elsewhere; any other setting as given."""
    if setting == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return setting


def prefetch_for(setting: int | str, device: torch.device) -> int:
    """`auto`: 2 batches ahead on CUDA, none on the CPU (the module's docstring says why)."""
    if setting == "auto":
        return 2 if device.type == "cuda" else 0
    return int(setting)


def threads_for(setting: int) -> int:
    """Threads cutting a batch: `setting`, or with 0 as many as torch's intra-op threads (one per
    core unless limited, as a sweep worker limits them)."""
    return setting or torch.get_num_threads()


def autocast(device: torch.device, precision: str):
    """torch.autocast for `precision` (fp32: nothing)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N x 3 x h x w (channels-last strides) -> float in [0, 1] on `device`. The conversion
    happens after the copy, on the device, so a quarter of the bytes cross; channels-last memory is
    kept (it is what cuDNN prefers, and on the CPU exactly what the model always received)."""
    return to_unit_float(images.to(device, non_blocking=True))


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on `device`, in channels-last memory format on CUDA. On CPU it also makes the
    process flush denormal floats to zero: a few epochs into training, weights, Adam's moments and
    activations hold values below 1.2e-38, and x86 arithmetic on them takes a slow path (a
    MobileNetV2 DADL checkpoint trained without flushing: 66 images/s without, 88 with,
    `python -m benchmarks.denormals`); values that small change no result that is reported."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def _cut(store: Store, plan: BatchPlan, pin: bool, pool: ThreadPoolExecutor | None, parts: int):
    """(uint8 images N x 3 x h x w, in pinned memory if `pin`; targets; augmentation draws), the
    batch's samples cut in `parts` shares by the threads of `pool`."""
    w, h = plan.size
    n = len(plan.idx)
    buffer = torch.empty((n, h, w, 3), dtype=torch.uint8, pin_memory=pin)
    out = buffer.numpy()
    if pool is None or n < 2:
        cut_batch(store, plan, out)
    else:
        bounds = np.linspace(0, n, min(parts, n) + 1).astype(int)
        list(pool.map(lambda a, b: cut_batch(store, plan, out, slice(a, b)), bounds[:-1], bounds[1:]))
    return buffer.permute(0, 3, 1, 2), batch_targets(store, plan), plan.augment


class Loader:
    """Iterate (images on `device` as floats in [0, 1], targets on `device`) over planned batches,
    each cut by `threads` threads (0: threads_for), `prefetch` of them prepared ahead in a background
    thread (`auto`: prefetch_for; 0: in the loop)."""

    def __init__(self, store: Store, plans: Iterable[BatchPlan], device: torch.device, prefetch: int | str = "auto", threads: int = 0):
        self.store, self.plans, self.device = store, plans, device
        self.prefetch, self.threads = prefetch_for(prefetch, device), threads_for(threads)
        self.pin = device.type == "cuda"

    def __len__(self) -> int:
        return len(self.plans)  # when the plans are a list (a progress bar asks)

    def _on_device(self, item):
        images, targets, draws = item
        images = model_input(images, self.device)
        if draws is not None:
            images = augment.apply(images, draws)
        return images, {k: v.to(self.device, non_blocking=True) for k, v in targets.items()}

    def __iter__(self):
        for item in self.uint8_batches():
            yield self._on_device(item)

    def uint8_batches(self):
        """What crosses to the device, batch by batch: (uint8 images N x 3 x h x w, pinned on CUDA;
        targets on the CPU; augmentation draws)."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="batch-cut") if self.threads > 1 else contextlib.nullcontext() as pool:
            if self.prefetch <= 0:
                for plan in self.plans:
                    yield _cut(self.store, plan, self.pin, pool, self.threads)
                return
            yield from self._ahead(pool)

    def _ahead(self, pool):
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce():
            try:
                for plan in self.plans:
                    if stop.is_set():
                        return
                    ready.put(("batch", _cut(self.store, plan, self.pin, pool, self.threads)))
                ready.put(("end", None))
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put(("error", exc))

        worker = threading.Thread(target=produce, name="batch-loader", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = ready.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    ready.get_nowait()
                worker.join(timeout=0.05)
