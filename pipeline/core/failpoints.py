"""Named places where a crash test can make this process die at once (SIGKILL, no clean-up), to
check that no crash leaves a trace a re-run cannot handle.

    HEADPOSE_FAILPOINT=train.after_state:2 python -m pipeline.train dadl   # dies the 2nd time there

Inert unless HEADPOSE_FAILPOINT is set; `hit` costs one environment lookup.
"""
from __future__ import annotations

import os
import signal

ENV = "HEADPOSE_FAILPOINT"
_counts: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, nth = spec.partition(":")
    if want != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
