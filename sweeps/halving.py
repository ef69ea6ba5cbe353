"""Synchronous successive halving over a grid (`pruner: halving` on a grid sweep).

Optuna's SuccessiveHalvingPruner is asynchronous: each trial is judged, at each rung, against
the trials that happen to have reported there before it. With trials run one after another the
first trial has nobody to be compared with and always trains to the end, and every later one is
cut after its first epoch against that single curve. Over a grid, where every cell is known in
advance, the halving can be done as its authors describe it: in rounds.

Rungs are 1, 3, 9, ... epochs (reduction factor 3) below the sweep's `epochs`, then `epochs`.
Round k trains every surviving cell up to rung k and pauses it there: the trial ends PRUNED
(user attr `until` = its rung) and its training's resume file stays. When every trial of the
round has finished, the best third of them (at least one) by validation MAE at the rung go on:
each gets a new trial for the same cell (user attrs `resumes` = the paused trial, `until` = the
next rung), which resumes the paused training from its last epoch, so a cell that reaches the
last rung has trained exactly as it would have without pruning. The paused trial is then
superseded: results.csv lists a cell once, by its last trial, whose `epochs` are the epochs the
cell trained in all. The cells that stop are PRUNED at their rung, with their last value.

Every decision is read from the study, so a sweep that is killed and re-run, or run by several
workers (also on several machines: a round is decided only when no trial of it is running
anywhere), continues where it stopped; a promotion two processes make at once is trained once
(sweeps.worker.blocker). A promotion whose training fails with an error (not a kill) is queued
again at most ATTEMPTS times in all; then the cell stops at its rung.
"""
from __future__ import annotations

import math
from collections import Counter

import optuna
from optuna.trial import TrialState

FACTOR = 3  # keep the best 1/FACTOR at each rung
ATTEMPTS = 3  # a promoted cell whose training fails this many times stops at its rung


def rungs(epochs: int, factor: int = FACTOR) -> list[int]:
    """Epochs at which a round ends: 1, factor, factor^2, ... below `epochs`, then `epochs`."""
    out, rung = [], 1
    while rung < epochs:
        out.append(rung)
        rung *= factor
    return out + [epochs]


def superseded(trials) -> set[int]:
    """Numbers of the paused trials that a trial which is not FAIL resumes."""
    return {t.user_attrs["resumes"] for t in trials if t.state != TrialState.FAIL and "resumes" in t.user_attrs}


def first_rung(epochs: int) -> dict:
    """User attrs of a cell's first trial."""
    return {"until": rungs(epochs)[0]}


def advance(study: optuna.Study, epochs: int) -> str:
    """Decide the next round if the current one is over: "queued" (trials were queued), "wait"
    (a trial of an unfinished round is waiting or running), or "done" (no cell goes further)."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
        return "wait"
    steps = rungs(epochs)
    taken = superseded(trials)
    failed = Counter(t.user_attrs["resumes"] for t in trials
                     if t.state == TrialState.FAIL and "resumes" in t.user_attrs and "skipped" not in t.user_attrs)
    for rung, following in zip(steps, steps[1:]):
        round_ = [t for t in trials if t.state == TrialState.PRUNED and t.user_attrs.get("until") == rung]
        if not round_:
            return "done"
        keep = max(1, math.ceil(len(round_) / FACTOR))
        best = sorted(round_, key=lambda t: (t.intermediate_values[rung], t.number))[:keep]
        fresh = [t for t in best if t.number not in taken and failed[t.number] < ATTEMPTS]
        for t in fresh:
            study.enqueue_trial(t.system_attrs["fixed_params"], user_attrs={"resumes": t.number, "until": following})
        if fresh:
            return "queued"
    return "done"


def paused_not_promoted(study: optuna.Study, epochs: int) -> list[optuna.trial.FrozenTrial]:
    """Paused trials whose cell stops there (their resume files can go), once no round is open."""
    trials = study.get_trials(deepcopy=False)
    taken = superseded(trials)
    return [t for t in trials if t.state == TrialState.PRUNED and t.user_attrs.get("until", epochs) < epochs and t.number not in taken]
