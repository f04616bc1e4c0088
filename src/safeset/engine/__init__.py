"""Engines schedule shards onto workers; the per-shard work itself lives in safeset.pipeline.

The engine is how a job runs, not what it is: it never enters job.json, so a scan started with
one engine can be resumed with the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

from safeset.engine.local import run_local
from safeset.pipeline import ScanContext
from safeset.sources.base import Shard
from safeset.store import ScanDir


class Engine(StrEnum):
    LOCAL = "local"
    RAY = "ray"


def check_engine(engine: Engine) -> None:
    """Fail before any work if the engine cannot run here (Ray not installed)."""
    if engine is Engine.RAY:
        from safeset.engine.ray import import_ray

        import_ray()


def run_engine(
    engine: Engine,
    shards: Sequence[Shard],
    ctx: ScanContext,
    scan_dir: ScanDir,
    on_done: Callable[[int], None],
    *,
    workers: int,
    ray_address: str | None = None,
) -> None:
    """Scan ``shards``, each result written through ``scan_dir``, ``on_done(samples)`` each."""
    if engine is Engine.RAY:
        from safeset.engine.ray import run_ray  # Ray is optional and slow to import

        run_ray(shards, ctx, scan_dir, workers, on_done, address=ray_address)
    else:
        run_local(shards, ctx, scan_dir, workers, on_done)
