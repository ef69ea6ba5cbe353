"""The one training loop, used by the train stage and by every sweep trial.

It resumes from its last finished epoch after a crash: the state of each epoch is kept under
cache/resume/, keyed by a hash of the configuration and of the training data, and saved before
the epoch is reported; the MLflow run of the interrupted attempt (its id is kept from the moment
the run starts) is continued rather than duplicated, and an epoch it had not reported yet is
logged then, once. A run whose loss runs away stops with one line and writes no checkpoint.
With `train.ema`, the checkpoint is a moving average of the weights over the steps (`averaged`),
kept in the resume state with the rest.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from models.registry import build_model
from pipeline.core.metrics import criterion_1
from pipeline.config.experiment import Experiment
from pipeline.core import failpoints
from pipeline.core.atomic import atomic_file, write_json
from pipeline.core.errors import ConfigError, HarnessError
from pipeline.core.paths import CACHE, crop_store
from pipeline.data.batches import batches, plan_batch, validation_mask
from pipeline.data.protocols import draw_split, rows
from pipeline.data.store import fingerprint, load_store
from pipeline.engine import distributed, tracking
from pipeline.engine.inference import predict, save_checkpoint
from pipeline.engine.loader import Loader, autocast, precision_for, prepare_model


def _optimizer(model, exp: Experiment):
    params = [p for p in model.parameters() if p.requires_grad]  # not the layers a model keeps frozen
    if exp.optimizer == "adam":
        return torch.optim.Adam(params, lr=exp.lr, weight_decay=exp.weight_decay)
    return torch.optim.SGD(params, lr=exp.lr, momentum=exp.momentum, weight_decay=exp.weight_decay)


def _save(path: Path, obj) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def averaged(model, decay: float | None) -> AveragedModel | None:
    """The exponential moving average of `model`'s weights and BatchNorm statistics (`train.ema`:
    after each step average = decay * average + (1 - decay) * weights), or None without one. The
    checkpoint, the per-epoch validation and MLflow's model are the average's."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def train_step(model, net, opt, scaler, images, targets, precision: str) -> tuple[float, dict]:
    """One optimiser step on one batch (images and targets on the device) under `precision`;
    returns the loss and its parts. `net` is the model, or its DistributedDataParallel wrapper."""
    with autocast(images.device, precision):
        loss, parts = model.loss(net(images), targets)
    value = loss.item()
    if math.isfinite(value):
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return value, parts


def state_key(exp: Experiment, data_fingerprint: str) -> str:
    blob = json.dumps({"config": exp.model_dump(mode="json"), "data": data_fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_experiment(exp: Experiment, out_dir: Path, progress: bool = True, on_epoch=None, tags: dict | None = None,
                     parent_run_id: str | None = None) -> dict:
    """Train `exp` on its training store, write out_dir/model.pt and train_log.csv.

    `on_epoch(epoch, val_mae)` is called after each epoch (sweeps report to Optuna there and may
    raise to stop the trial). Returns the final validation metrics and the MLflow run id.
    """
    protocol = exp.protocol
    store = load_store(crop_store(protocol.train, exp.store_size))
    data_fp = fingerprint(store.path)
    size = exp.input_size
    w, h = size
    if w > store.images.shape[2] or h > store.images.shape[1]:
        raise ConfigError(f"params.yaml experiments.{exp.name}: input_size {list(size)} exceeds the {protocol.train} store's "
                          f"{store.images.shape[2]} x {store.images.shape[1]} px; raise crop.store_size (crop.frame_size for frames), give the experiment a larger store_size "
                          "(one of crop.extra_store_sizes), or lower input_size")
    split = draw_split(protocol, store.labels["sequence"], exp.split_seed, exp.split_by, store.meta.get("source", ""))
    usable = rows(store.labels, protocol, split, protocol.train, "train")
    val = validation_mask(store.labels["group"].iloc[usable].tolist(), exp.val_fraction, exp.seed)
    train_idx, val_idx = usable[~val], usable[val]
    if len(train_idx) == 0:
        raise ConfigError(f"params.yaml: val_fraction {exp.val_fraction} leaves no training sample")

    rank, world, dev = distributed.setup()
    torch.manual_seed(exp.seed)
    model = prepare_model(build_model(exp.model, exp.hparams), dev)
    net = distributed.wrap(model, world, dev)
    precision = precision_for(exp.precision, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    opt = _optimizer(model, exp)
    ema = averaged(model, exp.ema)
    final = model if ema is None else ema.module  # what is validated, saved and logged
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(exp.lr_milestones), gamma=exp.lr_gamma)
    resume_path = CACHE / "resume" / f"{exp.name}-{state_key(exp, data_fp)}.pt"
    run_file = resume_path.with_name(resume_path.stem + ".run.json")
    start, history, run_id, first_loss = 0, [], None, None
    if resume_path.is_file():
        state = torch.load(resume_path, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start, history, run_id, first_loss = state["epoch"] + 1, state["history"], state["run_id"], state.get("first_loss")
        if rank == 0:
            print(f"resuming {exp.name} after epoch {start} from {resume_path}")
    elif run_file.is_file():  # killed in its first epoch: continue the same MLflow run
        run_id = json.loads(run_file.read_text())["run_id"]
    progress = progress and rank == 0

    # the tag `experiment` groups the runs of one experiment's seeds in the MLflow UI (group by, or compare)
    run_tags = {"stage": "train", "experiment": exp.name, "seed": exp.seed, "model": exp.model, "data_fingerprint": data_fp,
                "resume_key": resume_path.stem, **(tags or {})}
    if world > 1:
        run_tags["world_size"] = world
    with distributed.tracked_run(rank, f"train:{exp.name}", run_tags, run_id=run_id, parent_run_id=parent_run_id,
                                  reopen_tag="resume_key") as (mlflow, active):
        resumed, run_id = run_id is not None, active.info.run_id
        if rank == 0:
            write_json(run_file, {"run_id": run_id})  # before any work: a re-run after a kill reopens this run
            failpoints.hit("train.run_started")
            # logged again on a resumed run, with the same values (a kill may have come before them)
            mlflow.log_params({**tracking.flat_params(exp.summary()), "n_train": len(train_idx), "n_val": len(val_idx)})
            mlflow.log_dict({"protocol": protocol.name, "split": split, "split_seed": exp.split_seed}, "split.json")
            source = store.meta.get("source", "unknown")
            tracking.log_dataset(mlflow, protocol.train, store.path, data_fp, "training", source)
            if len(val_idx):
                tracking.log_dataset(mlflow, f"{protocol.train} (validation groups)", store.path, data_fp, "validation", source)
            if resumed:
                _log_missing_epochs(run_id, history)
            if on_epoch is not None:  # the epochs a killed attempt finished count for this one too (a sweep's retry)
                for row in history:
                    on_epoch(row["epoch"] - 1, row.get("val_mae", float("nan")))
        for epoch in range(start, exp.epochs):
            t0 = time.time()
            rng = np.random.default_rng([exp.seed, epoch])
            torch.manual_seed(exp.seed * 1000 + epoch)
            model.train()
            sums, count = {}, 0
            steps = distributed.shard(list(batches(len(train_idx), exp.batch_size, rng)), rank, world)
            plans = [plan_batch(store, train_idx[b], size, rng, exp.augment) for b in steps]  # every random draw, in order
            bar = tqdm(Loader(store, plans, dev, exp.prefetch), desc=f"{exp.name} epoch {epoch + 1}/{exp.epochs}", unit="batch",
                       disable=not progress)
            for images, targets in bar:
                failpoints.hit("train.batch")
                value, parts = train_step(model, net, opt, scaler, images, targets, precision)
                if not math.isfinite(value):
                    raise Diverged(f"experiment {exp.name}: the training loss became {value} in epoch {epoch + 1}; "
                                   f"lower lr (now {exp.lr:g}) in params.yaml")
                if ema is not None:
                    ema.update_parameters(model)
                first_loss = value if first_loss is None else first_loss
                for k, v in {"loss": value, **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v * len(images)
                count += len(images)
                bar.set_postfix(loss=f"{sums['loss'] / count:.3f}")
            sched.step()
            check_divergence(exp, epoch, sums["loss"] / count, first_loss)
            if rank != 0:  # only rank 0 validates, logs and saves; the others wait for it
                distributed.barrier(world)
                continue
            row = {"epoch": epoch + 1, **{f"train_{k}": v / count for k, v in sums.items()}}
            if len(val_idx):
                val_metrics = criterion_1(predict(final, store, val_idx, size, precision=precision, prefetch=exp.prefetch), store.ypr[val_idx])
                row.update({f"val_{k}": v for k, v in val_metrics.items() if k != "n"})
            row["lr"] = opt.param_groups[0]["lr"]
            row["seconds"] = time.time() - t0
            history.append(row)
            failpoints.hit("train.before_state")
            _save(resume_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                "epoch": epoch, "history": history, "run_id": run_id, "first_loss": first_loss,
                                **({} if ema is None else {"ema": ema.state_dict()})})
            failpoints.hit("train.after_state")  # saved, not yet reported: a re-run logs this epoch's metrics
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            if progress:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            distributed.barrier(world)
            if on_epoch is not None:
                on_epoch(epoch, row.get("val_mae", float("nan")))

        if rank != 0:
            distributed.finish(world)
            return {"run_id": None, "rank": rank}
        out_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out_dir / "model.pt", exp, final, epochs=exp.epochs, train_run_id=run_id, data_fingerprint=data_fp, split=split)
        with atomic_file(out_dir / "train_log.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        failpoints.hit("train.after_checkpoint")
        mlflow.log_artifact(str(out_dir / "model.pt"))
        mlflow.log_artifact(str(out_dir / "train_log.csv"))
        example, _ = next(iter(Loader(store, [plan_batch(store, (val_idx if len(val_idx) else train_idx)[:4], size)], dev, prefetch=0)))
        tracking.log_model(mlflow, final, example.cpu())
    resume_path.unlink(missing_ok=True)
    run_file.unlink(missing_ok=True)
    distributed.finish(world)
    return {"run_id": run_id, **history[-1]}


class Diverged(HarnessError):
    """The training loss ran away: the run stops before any output is written."""


DIVERGENCE = 10.0  # an epoch whose mean training loss exceeds this many times the first batch's has diverged


def check_divergence(exp: Experiment, epoch: int, mean_loss: float, first_loss: float) -> None:
    """Stop (one line, no checkpoint) when an epoch's mean training loss is far above the loss of
    the very first batch: on a healthy run it falls from there (an untrained model's loss is the
    largest it sees), while a learning rate that is too high drives it up by orders of magnitude."""
    if first_loss is not None and mean_loss > DIVERGENCE * max(first_loss, 1e-12):
        raise Diverged(f"experiment {exp.name} diverged: its mean training loss in epoch {epoch + 1} is {mean_loss:.3g}, "
                       f"more than {DIVERGENCE:g} times the first batch's {first_loss:.3g}; lower lr (now {exp.lr:g}) in params.yaml")


def _log_missing_epochs(run_id: str, history: list[dict]) -> None:
    """Log the finished epochs the MLflow run does not hold yet (a kill between saving an epoch's
    state and reporting it), so each epoch is logged exactly once."""
    client = tracking.client()
    logged = {m.step for m in client.get_metric_history(run_id, "train_loss")}
    for row in history:
        if row["epoch"] not in logged:
            tracking.log_row(client, run_id, row)
