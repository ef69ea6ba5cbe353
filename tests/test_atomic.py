"""Atomic writes: a failed write leaves nothing, and the debris of dead processes is removed."""
from __future__ import annotations

import os

import pytest

from pipeline.core.atomic import atomic_file, remove_stale, remove_stale_in

DEAD = 2**22 + 12345  # above the default pid_max: no process has it


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_only_the_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = [tmp_path / f".model.pt.{DEAD}.ab.tmp", tmp_path / f".train_log.csv.{DEAD}.cd.tmp"]
    live = tmp_path / f".model.pt.{os.getpid()}.ef.tmp"
    for p in [*dead, live, tmp_path / "model.pt"]:
        p.write_text("x")
    assert remove_stale(tmp_path / "model.pt") == [dead[0]]
    dead[0].write_text("x")
    assert sorted(remove_stale_in(tmp_path)) == sorted(dead)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "model.pt"])
