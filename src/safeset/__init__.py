"""safeset: audit image datasets against known-abuse hash lists and write a cleaned copy.

The public API (see ``safeset.api``): ``Auditor`` and ``Verdict`` to check items in memory,
``scan`` and ``clean`` for whole datasets, ``HashList`` for lists (from files or in memory),
``ScanOptions`` and ``Policy`` for what is computed and decided, ``LocalEngine`` and
``RayEngine`` for where it runs. Extension points: ``safeset.signals.register`` (hash types and
content signals), ``safeset.formats.register`` (dataset formats), ``safeset.policy.register_rule``.
"""

__version__ = "0.1.0"

from safeset.api import Auditor, Verdict, clean, load_lists, open_sources, scan
from safeset.engines import Engine, LocalEngine
from safeset.errors import SafesetError
from safeset.formats import SourceOptions
from safeset.lists import HashList
from safeset.matching.matcher import Match
from safeset.pipeline import ScanOptions
from safeset.policy import Action, Policy

__all__ = [
    "Action",
    "Auditor",
    "Engine",
    "HashList",
    "LocalEngine",
    "Match",
    "Policy",
    "RayEngine",
    "SafesetError",
    "ScanOptions",
    "SourceOptions",
    "Verdict",
    "__version__",
    "clean",
    "load_lists",
    "open_sources",
    "scan",
]


def __getattr__(name: str):
    if name == "RayEngine":
        from safeset.engines.ray import RayEngine

        return RayEngine
    raise AttributeError(name)
