"""Feeding a model: batches cut ahead in a background thread, handed over as uint8 (pinned memory
and non-blocking copies on CUDA), made float on the device, and the model run under the chosen
precision.

    for images, targets in Loader(store, plans, device, prefetch=2):
        with autocast(device, "bf16"):
            outputs = model(images)

A batch's randomness is drawn when it is planned (pipeline.data.batches.plan_batch), in order, in
the calling thread, so a background thread changes nothing in what a batch holds: the batches are
bit for bit those of the loop without it. numpy releases the GIL while it copies, and the thread
only copies memory, so on a CPU it costs the model little (benchmarks/throughput.py measures it).
"""
from __future__ import annotations

import contextlib
import queue
import threading
from typing import Iterable

import torch

from pipeline.data import augment
from pipeline.data.batches import BatchPlan, as_images, batch_targets, cut_batch, to_unit_float
from pipeline.data.store import Store

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_for(setting: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA, fp32 elsewhere; any other setting as given."""
    if setting == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return setting


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
    """The model on `device`, in channels-last memory format on CUDA."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def _cut(store: Store, plan: BatchPlan, pin: bool):
    images = as_images(cut_batch(store, plan))
    return (images.pin_memory() if pin else images), batch_targets(store, plan), plan.augment


class Loader:
    """Iterate (images on `device` as floats in [0, 1], targets on `device`) over planned batches,
    `prefetch` of them cut ahead in one background thread (0: cut in the loop)."""

    def __init__(self, store: Store, plans: Iterable[BatchPlan], device: torch.device, prefetch: int = 2):
        self.store, self.plans, self.device, self.prefetch = store, plans, device, prefetch
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
        if self.prefetch <= 0:
            for plan in self.plans:
                yield self._on_device(_cut(self.store, plan, self.pin))
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce():
            try:
                for plan in self.plans:
                    if stop.is_set():
                        return
                    ready.put(("batch", _cut(self.store, plan, self.pin)))
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
                yield self._on_device(item)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    ready.get_nowait()
                worker.join(timeout=0.05)
