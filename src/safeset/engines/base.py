"""What an engine is: a scheduler of shard tasks, and nothing else.

An engine runs a task (the per-shard pipeline) over shards and hands each result back, as it
comes, to the caller's ``on_result``, which stores it. The bounded window of tasks in flight,
the order of hand-back and the translation of a dead worker into one clear error are written
once here; an engine only says how to start, submit, wait and stop.

The engine is how a job runs, not what it is: it never enters job.json, so a scan started with
one engine can be resumed with another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from safeset.errors import SafesetError

T = TypeVar("T")  # a unit of work (a shard)
R = TypeVar("R")  # its result (a table)
Handle = Any


class EngineError(SafesetError):
    """A worker died or could not be reached; finished results are kept."""


class Engine(ABC, Generic[T, R]):
    name: str = ""
    #: Whether its workers read this machine's files at the driver's paths (a task may then
    #: read what the driver wrote, e.g. a scan folder's results).
    shares_files: bool = False

    def check(self) -> None:
        """Fail in one line, before any work, if this engine cannot run here."""

    def run(
        self, tasks: Sequence[T], fn: Callable[[T], R], on_result: Callable[[T, R], None]
    ) -> None:
        """``on_result(task, fn(task))`` for every task, in completion order."""
        if not tasks:
            return
        self._start(fn, len(tasks))
        try:
            self._drain(iter(tasks), on_result)
        finally:
            self._stop()

    def _drain(self, queue: Iterable[T], on_result: Callable[[T, R], None]) -> None:
        queue = iter(queue)
        pending: dict[Handle, T] = {}
        # A bounded window keeps memory flat however many tasks a job has.
        window = 2 * self._slots()
        while True:
            while len(pending) < window and (task := next(queue, None)) is not None:
                pending[self._submit(task)] = task
            if not pending:
                return
            for handle in self._wait(list(pending)):
                task = pending.pop(handle)
                on_result(task, self._result(handle, task))

    @abstractmethod
    def _start(self, fn: Callable[[T], R], ntasks: int) -> None:
        """Get workers ready to run ``fn``."""

    @abstractmethod
    def _slots(self) -> int:
        """How many tasks can run at once."""

    @abstractmethod
    def _submit(self, task: T) -> Handle: ...

    @abstractmethod
    def _wait(self, handles: list[Handle]) -> list[Handle]:
        """At least one finished handle."""

    @abstractmethod
    def _result(self, handle: Handle, task: T) -> R:
        """The task's result; EngineError if its worker died, the task's own error if it
        raised one."""

    @abstractmethod
    def _stop(self) -> None: ...
