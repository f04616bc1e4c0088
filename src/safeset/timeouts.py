"""A per-sample time limit, so one pathological sample cannot stall a shard forever.

It works in any thread (a worker process's main thread, a thread of a user's own pipeline, an
HF ``datasets`` or Ray Data worker). One watchdog thread per process wakes when the earliest
deadline is due and interrupts the thread whose sample overran:

- the main thread with SIGALRM (sent to that thread only), whose handler raises
  ``SampleTimeout``: like any signal it also cuts short a blocking system call;
- any other thread with an asynchronous exception, which takes effect when that thread next
  runs Python code (Python cannot interrupt a C call in a thread other than the main one).

Neither can interrupt a C call that never returns (a decoder in an endless loop), which is why
images are size-capped before decoding. Entering and leaving a limit costs an uncontended
lock and a dict update, no system call; the watchdog sleeps until the earliest deadline and is
woken only for an earlier one.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# The watchdog wakes at least this often (seconds), whatever the limits ask.
MAX_WAIT = 3600.0


class SampleTimeout(BaseException):
    """A sample ran out of time. Not an ``Exception``: decoders' and plugins' broad ``except
    Exception`` handlers must not turn it into "corrupt data" (a progressive JPEG with 20,000
    scans is slow, not broken)."""


@dataclass
class _Limit:
    deadline: float
    fired: bool = False


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._limits: dict[int, _Limit] = {}
        self._thread: threading.Thread | None = None
        self._handler_installed = False
        self._previous_handler = None
        # When the watchdog next wakes by itself: a limit due later needs no wake-up call, so
        # a thread arming one limit after another (a sample after another) never wakes it.
        self._wake_at = math.inf

    def arm(self, seconds: float) -> _Limit:
        ident = threading.get_ident()
        if ident == threading.main_thread().ident and not self._handler_installed:
            self._install_handler()
        limit = _Limit(time.monotonic() + seconds)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="safeset-timeouts", daemon=True
                )
                self._thread.start()
            self._limits[ident] = limit
            if limit.deadline < self._wake_at:
                self._lock.notify()
        return limit

    def disarm(self, limit: _Limit) -> None:
        ident = threading.get_ident()
        with self._lock:
            if self._limits.get(ident) is limit:
                del self._limits[ident]
            if limit.fired and ident != threading.main_thread().ident:
                # Fired but maybe not yet delivered: cancel what is still pending.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)

    def _install_handler(self) -> None:
        self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        self._handler_installed = True

    def _on_alarm(self, signum: int, frame: object) -> None:
        limit = self._limits.get(threading.get_ident())
        if limit is not None and limit.fired:
            raise SampleTimeout
        if callable(self._previous_handler):  # not ours: whoever had SIGALRM before
            self._previous_handler(signum, frame)

    def _watch(self) -> None:
        main = threading.main_thread().ident
        with self._lock:
            while True:
                now = time.monotonic()
                for ident, limit in list(self._limits.items()):
                    if limit.deadline <= now and not limit.fired:
                        limit.fired = True
                        if ident == main:
                            signal.pthread_kill(ident, signal.SIGALRM)
                        else:
                            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                                ctypes.c_ulong(ident), ctypes.py_object(SampleTimeout)
                            )
                pending = [lim.deadline for lim in self._limits.values() if not lim.fired]
                # Capped: a wait beyond threading.TIMEOUT_MAX would kill this thread.
                wait = min(max(0.0, min(pending) - now), MAX_WAIT) if pending else MAX_WAIT
                self._wake_at = now + wait
                self._lock.wait(timeout=wait)


_watchdog = _Watchdog()


def _after_fork() -> None:
    # A forked worker inherits neither the watchdog thread nor, safely, its lock.
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise SampleTimeout in the calling thread if the block runs over ``seconds``."""
    if not (0 < seconds < math.inf):
        yield
        return
    limit = _watchdog.arm(seconds)
    try:
        yield
    except SampleTimeout:
        _watchdog.disarm(limit)
        raise
    else:
        # Delivered on the way out, the exception is moot: the block itself finished in time.
        with contextlib.suppress(SampleTimeout):
            _watchdog.disarm(limit)
