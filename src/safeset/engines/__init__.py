"""Engines schedule tasks onto workers; the per-shard work itself lives in safeset.pipeline.

``LocalEngine`` (a process pool, the default) and ``RayEngine`` (``pip install
'safeset[ray]'``) implement one interface, ``Engine.run(tasks, fn, on_result)``.
"""

from __future__ import annotations

from safeset.engines.base import Engine, EngineError
from safeset.engines.local import LocalEngine

__all__ = ["Engine", "EngineError", "LocalEngine", "RayEngine", "engine_named"]


def __getattr__(name: str):
    if name == "RayEngine":  # Ray is optional and slow to import: only on demand
        from safeset.engines.ray import RayEngine

        return RayEngine
    raise AttributeError(name)


def engine_named(name: str, *, workers: int, address: str | None = None) -> Engine:
    """The engine ``--engine NAME`` stands for."""
    from safeset.errors import SafesetError

    if name == "local":
        if address:
            raise SafesetError("--ray-address is for --engine ray")
        return LocalEngine(workers)
    if name == "ray":
        from safeset.engines.ray import RayEngine

        return RayEngine(workers, address)
    raise SafesetError(f"--engine {name!r}: expected local or ray")
