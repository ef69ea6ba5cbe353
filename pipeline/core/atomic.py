"""Write outputs so that a crash never leaves a half-written file or folder that looks complete,
and a re-run never finds the debris of a killed one.

A temporary output is named `.<target name>.<pid>.<random>.tmp` beside its target. Before a new
one is made, every temporary output of the same target whose process is gone (a kill -9, a
power cut) is removed, as is a `.<target name>.old` left between the two renames of a folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline.core import failpoints
from pipeline.core.workers import alive


def remove_stale(target: Path) -> list[Path]:
    """Remove the temporary outputs of `target` left by processes that no longer run; returns them."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^/]+\.tmp$")
    removed = []
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        stale = (match and not alive(int(match.group(1)))) or entry.name == f".{target.name}.old"
        if stale:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def remove_stale_in(folder: Path) -> list[Path]:
    """Remove the temporary outputs of every target in `folder` left by processes that no longer
    run (a folder a killed process wrote into and nothing will write into again)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile(r"^\.(.+)\.\d+\.[^/]+\.tmp$")
    targets = {match.group(1) for match in map(pattern.match, (e.name for e in folder.iterdir())) if match}
    return [p for name in sorted(targets) for p in remove_stale(folder / name)]


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_dir(target: Path):
    """Yield a temporary sibling folder; on success it replaces `target`, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    failpoints.hit("atomic_dir.before_rename")
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


@contextlib.contextmanager
def atomic_file(target: Path):
    """Yield a temporary path next to `target`; it is renamed onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    fd, name = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        failpoints.hit("atomic_file.before_rename")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_json(path: Path, data) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)
