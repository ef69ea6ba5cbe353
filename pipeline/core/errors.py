"""Errors a user can fix. Stage entry points print them as one line and exit non-zero."""
from __future__ import annotations

import functools
import sys


class HarnessError(Exception):
    """A problem with the user's input: the message names the file or setting and the fix."""


class DataError(HarnessError):
    """A dataset file is missing, corrupt or in the wrong format."""


class ConfigError(HarnessError):
    """A value in params.yaml (or on the command line) is unknown or out of range."""


def cli(main):
    """Wrap a stage's main(): HarnessError -> 'error: <message>' on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper
