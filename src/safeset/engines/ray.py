"""The Ray engine: the same tasks, scheduled as Ray tasks on a local Ray or a cluster.

Why plain tasks over shards rather than Ray Data: a shard is already the unit of work, of
resume and of progress. One task runs one shard and returns its result table (small: hashes
and verdicts, never image bytes), which the driver stores, so "this shard is done" stays one
atomic file per shard id and a rerun skips exactly the finished ones. Ray Data would re-chunk
samples into blocks that match no shard. (To use safeset *inside* a Ray Data pipeline, see
``safeset.integrations.ray_data``.)

``--out`` needs to exist on the driver only; on a cluster of several machines, workers need
safeset installed and the SOURCE paths readable at the same paths (a shared file system), or
URL tables whose images they download themselves.

The task (scanner with its indexes) is put in the object store once; each worker process
fetches it once and keeps it (see ``_task_fn``) instead of receiving a copy with every task.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from types import ModuleType
from typing import Any

from safeset.engines.base import Engine, EngineError
from safeset.errors import SafesetError

# The task function this worker process last fetched, by object id: (id, function).
_cached: tuple[str, Callable[[Any], Any]] | None = None


def _task_fn(ref: Any) -> Callable[[Any], Any]:
    global _cached
    if _cached is None or _cached[0] != ref.hex():
        import ray

        _cached = (ref.hex(), ray.get(ref))
    return _cached[1]


def _run_task(fn_box: list[Any], task: Any) -> Any:
    # The reference arrives boxed in a list: Ray would resolve a bare ObjectRef argument and
    # deserialise the function (rebuilding its indexes) for every task.
    return _task_fn(fn_box[0])(task)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise SafesetError("--engine ray needs Ray: pip install 'safeset[ray]'") from None
    return ray


def check_reachable(address: str) -> None:
    """Fail in seconds on a HOST:PORT nobody answers at; Ray itself retries for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SafesetError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _connect(ray: ModuleType, address: str | None, workers: int) -> bool:
    """Join the cluster at ``address`` or start a local Ray; True if this call started it."""
    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # address="local": a fresh local Ray even when RAY_ADDRESS names a cluster.
            ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        hint = ""
        if address and "RAY_AUTH_MODE" not in os.environ:
            hint = " (a cluster with token authentication needs RAY_AUTH_MODE=token)"
        raise SafesetError(f"cannot start or join {where}: {exc}{hint}") from None
    return True


class RayEngine(Engine):
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.address = address
        self._ray: ModuleType | None = None
        self._started = False
        self._remote: Any = None
        self._fn_box: list[Any] = []

    def check(self) -> None:
        import_ray()

    def _start(self, fn: Callable[[Any], Any], ntasks: int) -> None:
        ray = self._ray = import_ray()
        self._started = _connect(ray, self.address, self.workers)
        self._remote = ray.remote(num_cpus=1)(_run_task)
        self._fn_box = [ray.put(fn)]

    def _slots(self) -> int:
        """The local Ray's workers, or the cluster's CPUs."""
        if not self.address:
            return self.workers
        assert self._ray is not None
        return max(1, int(self._ray.cluster_resources().get("CPU", self.workers)))

    def _submit(self, task: Any) -> Any:
        return self._remote.remote(self._fn_box, task)

    def _wait(self, handles: list[Any]) -> list[Any]:
        assert self._ray is not None
        ready, _ = self._ray.wait(handles, num_returns=1)
        return ready

    def _result(self, handle: Any, task: Any) -> Any:
        ray = self._ray
        assert ray is not None
        try:
            return ray.get(handle)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, SafesetError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:
            # Ray retries a task whose worker or node died; this failure outlived those retries.
            raise EngineError(
                f"Ray could not run {getattr(task, 'id', task)} ({type(exc).__name__}); rerun "
                "the same command to resume (finished shards are kept)"
            ) from None

    def _stop(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._started = False
