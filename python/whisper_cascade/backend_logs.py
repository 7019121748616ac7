"""Silencing whisper.cpp's model-loading log lines (it writes them straight to file descriptor 2).

The command line turns this on so that a transcription prints the transcription, not forty lines
of hyper-parameters; ``WHISPER_CASCADE_BACKEND_LOGS=1`` turns it back off. The service leaves it
off: redirecting a process-wide descriptor would also swallow other threads' messages, and
pywhispercpp's Python log callback is called without the GIL and crashes the interpreter.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOGS_ENV", "quiet_loading", "set_quiet_loading"]

LOGS_ENV = "WHISPER_CASCADE_BACKEND_LOGS"
_state = {"quiet": False}
_lock = threading.Lock()


def set_quiet_loading(quiet: bool) -> None:
    """Silence (True) or show (False) whisper.cpp's output while a model loads."""
    _state["quiet"] = bool(quiet) and os.environ.get(LOGS_ENV, "") not in ("1", "true", "yes")


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Within the block, file descriptor 2 goes to /dev/null when quiet loading is on."""
    if not _state["quiet"]:
        yield
        return
    with _lock:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
