"""The default engine: this process, or a pool of local processes, each running whole tasks.

Workers are forked, so the task (the scanner and its built indexes) is shared with them
copy-on-write instead of being pickled to each.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from safeset.engines.base import Engine, EngineError

_worker_fn: Callable[[Any], Any] | None = None


def _init_worker(fn: Callable[[Any], Any]) -> None:
    global _worker_fn
    _worker_fn = fn


def _run_in_worker(task: Any) -> Any:
    assert _worker_fn is not None, "worker used before initialisation"
    return _worker_fn(task)


class LocalEngine(Engine):
    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._fn: Callable[[Any], Any] | None = None
        self._pool: ProcessPoolExecutor | None = None

    def _start(self, fn: Callable[[Any], Any], ntasks: int) -> None:
        self._fn = fn
        if self.workers > 1 and ntasks > 1:
            mp = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp, initializer=_init_worker, initargs=(fn,)
            )

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
