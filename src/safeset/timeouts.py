"""A per-sample time limit, so one pathological sample cannot stall a shard forever.

SIGALRM interrupts Python code and any C call that returns to the interpreter; signals can only
be handled on a process's main thread, where both engines run samples. Elsewhere the limit is
not applied rather than applied wrongly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SampleTimeout(Exception):
    pass


def _raise_timeout(signum: int, frame: object) -> None:
    raise SampleTimeout


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
