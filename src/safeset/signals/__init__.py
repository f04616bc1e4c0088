"""Signals: what safeset computes from a sample, registered by name.

Two kinds, one registry each:

- hash types (``HashType``: md5, sha1, sha256, pdq...), which lists hold and samples are matched
  on, each knowing how it is computed, parsed, compared, indexed and stored;
- content signals (``Signal``: explicit score, faces and ages, caption terms...), computed per
  batch of samples into result columns that policy rules read.

Third-party packages add theirs through the ``safeset.signals`` entry point group (an object
that is a HashType or Signal subclass), or by calling ``register`` before a scan.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from safeset.signals.base import (
    BytesHashType,
    ComputeOptions,
    HashType,
    HashValue,
    Index,
    PixelHashType,
)
from safeset.signals.content import Signal
from safeset.signals.cryptographic import MD5, SHA1, SHA256, SHA512
from safeset.signals.explicit import ExplicitSignal
from safeset.signals.faces import FacesSignal
from safeset.signals.near import NearSignal
from safeset.signals.pdq import PDQ
from safeset.signals.terms import TermsSignal

__all__ = [
    "BytesHashType",
    "ComputeOptions",
    "HashType",
    "HashValue",
    "Index",
    "PixelHashType",
    "Signal",
    "content_signal",
    "content_signals",
    "hash_type",
    "hash_types",
    "lookup",
    "register",
]

_HASH_TYPES: dict[str, type[HashType]] = {}
_ALIASES: dict[str, str] = {}
_SIGNALS: dict[str, type[Signal]] = {}
_plugins_loaded = False


def register(cls: type[HashType] | type[Signal]) -> type[HashType] | type[Signal]:
    """Make a hash type or content signal known by its name (usable as a class decorator)."""
    if issubclass(cls, HashType):
        _HASH_TYPES[cls.name] = cls
        for alias in cls.aliases:
            _ALIASES[alias] = cls.name
    elif issubclass(cls, Signal):
        _SIGNALS[cls.name] = cls
    else:
        raise TypeError(f"{cls!r} is neither a HashType nor a Signal")
    return cls


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in entry_points(group="safeset.signals"):
        register(entry.load())


def hash_types() -> list[type[HashType]]:
    """Every registered hash type, built-in ones first."""
    _load_plugins()
    return list(_HASH_TYPES.values())


def lookup(name: str) -> type[HashType] | None:
    """The hash type a name (or alias) stands for, as written in a list or on the command
    line (case ignored), else None."""
    _load_plugins()
    key = name.strip().lower()
    return _HASH_TYPES.get(_ALIASES.get(key, key))


def hash_type(name: str) -> type[HashType]:
    found = lookup(name)
    if found is None:
        raise KeyError(name)
    return found


def content_signals() -> list[type[Signal]]:
    _load_plugins()
    return list(_SIGNALS.values())


def content_signal(name: str) -> type[Signal]:
    _load_plugins()
    return _SIGNALS[name]


for _builtin in (
    MD5,
    SHA1,
    SHA256,
    SHA512,
    PDQ,
    TermsSignal,
    ExplicitSignal,
    FacesSignal,
    NearSignal,
):
    register(_builtin)


def _register_provenance() -> None:
    from safeset.provenance.signal import ProvenanceSignal

    register(ProvenanceSignal)


_register_provenance()

# The types every scan computes and records, whatever its lists hold.
DEFAULT_HASH_TYPES = ("md5", "sha1", "sha256", "pdq")
# What --screen adds, in the order they run.
SCREENING_SIGNALS = ("terms", "explicit", "faces")
