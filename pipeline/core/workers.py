"""Processes: pool workers that go quietly (a worker ignores Ctrl-C, which its parent handles, and
dies with its parent instead of printing a BrokenPipeError traceback when the parent is killed
while it still sends results), and whether a process still runs."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def quiet_worker() -> None:
    """Pool initializer: ignore SIGINT; on Linux, get SIGKILL when the parent process dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the worker just keeps the default behaviour
            pass


def alive(pid: int) -> bool:
    """Does process `pid` (on this host) still run?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
