"""The default engine: this process, or a pool of local processes, each running whole tasks.

Workers are forked, so the task (the scanner and its built indexes) is shared with them
copy-on-write instead of being pickled to each.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from safeset.engines.base import Engine, EngineError

_worker_fn: Callable[[Any], Any] | None = None

# Open files the parent holds per worker (its pipes), and what it keeps for everything else.
FDS_PER_WORKER = 4
FDS_RESERVED = 64
# Hashing is CPU-bound (downloads have threads of their own): more processes than this per
# core only add memory and switching.
WORKERS_PER_CPU = 4
_PR_SET_PDEATHSIG = 1


def worker_cap() -> tuple[int, str]:
    """The most worker processes that make sense here, and why (open files, or cores)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    by_files = max(1, (soft - FDS_RESERVED) // FDS_PER_WORKER) if soft > 0 else 1 << 30
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    by_cpus = WORKERS_PER_CPU * (cpus or 1)
    if by_files < by_cpus:
        return by_files, f"the open-file limit of {soft} (ulimit -n)"
    return by_cpus, f"{WORKERS_PER_CPU} per CPU core ({cpus} here)"


def _init_worker(fn: Callable[[Any], Any], parent: int) -> None:
    global _worker_fn
    _worker_fn = fn
    # A worker never outlives the scan that started it, however the scan ends (SIGTERM,
    # kill -9): it only computes, the parent writes, so nothing is lost by ending it.
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's clean-up below still runs
        pass


def _run_in_worker(task: Any) -> Any:
    assert _worker_fn is not None, "worker used before initialisation"
    return _worker_fn(task)


class LocalEngine(Engine):
    name = "local"
    shares_files = True

    def __init__(self, workers: int | None = None) -> None:
        asked = max(1, workers or os.cpu_count() or 1)
        cap, why = worker_cap()
        self.workers = min(asked, cap)
        #: Said to the user when the workers asked for were more than make sense here.
        self.note = f"--workers {asked} capped at {cap}: {why}" if asked > cap else None
        self._fn: Callable[[Any], Any] | None = None
        self._pool: ProcessPoolExecutor | None = None

    def _start(self, fn: Callable[[Any], Any], ntasks: int) -> None:
        self._fn = fn
        if self.workers > 1 and ntasks > 1:
            mp = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                min(self.workers, ntasks),  # never more processes than tasks
                mp_context=mp,
                initializer=_init_worker,
                initargs=(fn, os.getpid()),
            )

    def _drain(self, queue, on_result) -> None:
        try:
            super()._drain(queue, on_result)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: end the workers now rather than wait for
            # their shards; finished shards are already stored, the rest is redone on resume.
            self._kill()
            raise

    def _kill(self) -> None:
        if self._pool is None:
            return
        processes = list((self._pool._processes or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def _slots(self) -> int:
        return self.workers if self._pool else 1

    def _submit(self, task: Any) -> Any:
        if self._pool is None:
            return task  # run in this process when its result is asked for
        return self._pool.submit(_run_in_worker, task)

    def _wait(self, handles: list[Any]) -> list[Any]:
        if self._pool is None:
            return handles[:1]
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    def _result(self, handle: Any, task: Any) -> Any:
        if not isinstance(handle, Future):
            assert self._fn is not None
            return self._fn(task)
        try:
            return handle.result()
        except BrokenProcessPool:
            raise EngineError(
                f"a worker process died while running {_name(task)}; rerun the same command to "
                "resume (finished shards are kept)"
            ) from None

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _name(task: Any) -> str:
    return getattr(task, "id", None) or repr(task)
