"""A named hash list held as compact arrays, and the ``--list`` argument that names one."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from safeset.errors import SafesetError
from safeset.lists.parse import read_blocks
from safeset.signals import HashType, Index, hash_type, lookup


@dataclass(frozen=True)
class ListSpec:
    """``[NAME=][TYPE:]FILE`` as given on the command line."""

    path: Path
    name: str
    declared: type[HashType] | None = None

    @classmethod
    def parse(cls, text: str) -> ListSpec:
        name = None
        if "=" in text.split(":", 1)[0]:
            name, text = text.split("=", 1)
            if not name:
                raise SafesetError(f"--list {text}: empty list name before '='")
        declared = None
        if ":" in text:
            prefix, rest = text.split(":", 1)
            declared = lookup(prefix)
            if declared is not None:
                text = rest
        path = Path(text)
        return cls(path=path, name=name or path.stem, declared=declared)


@dataclass(repr=False)
class HashList:
    """Entries of one list grouped by hash type: raw values plus the line each came from.

    Its repr and every message about it give counts, never entries (invariant 5).
    """

    name: str
    path: Path | None
    values: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    skipped: Counter[str] = field(default_factory=Counter)
    # sha256 of the file (or of the entries, for a list built in memory): identifies the list in
    # job records without revealing any entry.
    fingerprint: str = ""
    # Indexes loaded from a saved list (safeset lists build), by hash type.
    prebuilt: dict[str, Index] = field(default_factory=dict)
    # Per-list rules from a lists file (safeset.lists.config); None: the scan's own setting.
    pdq_threshold: int | None = None
    action: str | None = None  # "remove" or "review" for a match on this list
    role: str = "block"  # "allow": a match cancels block-list matches on the same file
    cancels: tuple[str, ...] = ()  # allow lists: only these block lists (empty: all)

    def rules(self) -> dict[str, object]:
        """The per-list rules as plain data (job identity, summary)."""
        return {
            "pdq_threshold": self.pdq_threshold,
            "action": self.action,
            "role": self.role,
            "cancels": list(self.cancels),
        }

    @classmethod
    def from_hashes(cls, name: str, hashes: Mapping[str, Iterable[str]]) -> HashList:
        """A list built in memory from hex values by type: ``{"pdq": [...], "md5": [...]}``.

        Entry numbers (what a match reports instead of the value) count from 1 in the order
        given, per type. A malformed value raises SafesetError naming its type and number.
        """
        values, lines = {}, {}
        digest = hashlib.sha256()
        for type_name, texts in hashes.items():
            signal_type = lookup(type_name)
            if signal_type is None:
                raise SafesetError(f"list {name}: unknown hash type {type_name!r}")
            raw = []
            for n, text in enumerate(texts, start=1):
                try:
                    raw.append(signal_type.parse(text.strip().lower()))
                except ValueError as exc:
                    raise SafesetError(
                        f"list {name}: {signal_type.name} entry {n}: {exc}"
                    ) from None
            if raw:
                values[signal_type.name] = np.frombuffer(b"".join(raw), np.uint8).reshape(
                    -1, signal_type.nbytes
                )
                lines[signal_type.name] = np.arange(1, len(raw) + 1, dtype=np.int64)
                digest.update(signal_type.name.encode() + b"\0" + b"".join(raw))
        if not values:
            raise SafesetError(f"list {name} has no hashes")
        return cls(name, None, values, lines, fingerprint=digest.hexdigest())

    def index(self, type_name: str) -> Index:
        """The search index for one hash type: prebuilt if saved, else built now."""
        if type_name not in self.prebuilt:
            self.prebuilt[type_name] = hash_type(type_name).build_index(self.values[type_name])
        return self.prebuilt[type_name]

    def __len__(self) -> int:
        return sum(len(v) for v in self.values.values())

    def __repr__(self) -> str:
        return f"HashList(name={self.name!r}, entries={self.counts()})"

    def counts(self) -> dict[str, int]:
        return {t: len(v) for t, v in self.values.items()}


def load_list(spec: ListSpec) -> HashList:
    """Load and validate a list file; SafesetError (file and line, no contents) if unusable."""
    from safeset.lists.saved import is_saved_list, load_saved_list

    if spec.path.is_dir() and is_saved_list(spec.path):
        return load_saved_list(spec.path, spec.name)
    if not spec.path.is_file():
        raise SafesetError(f"hash list not found: {spec.path}")
    chunks: dict[str, list[bytes]] = {}
    line_chunks: dict[str, list[np.ndarray]] = {}
    skipped: Counter[str] = Counter()
    for block in read_blocks(spec.path, spec.declared):
        for name, raw in block.values.items():
            chunks.setdefault(name, []).append(raw)
            line_chunks.setdefault(name, []).append(np.asarray(block.lines[name], dtype=np.int64))
        skipped.update(block.skipped)
    values = {
        name: np.frombuffer(b"".join(parts), dtype=np.uint8).reshape(-1, lookup(name).nbytes)
        for name, parts in chunks.items()
    }
    if not values:
        detail = f" ({sum(skipped.values())} entries of unsupported types)" if skipped else ""
        raise SafesetError(f"hash list {spec.path} has no usable hashes{detail}")
    return HashList(
        name=spec.name,
        path=spec.path,
        values=values,
        lines={name: np.concatenate(parts) for name, parts in line_chunks.items()},
        skipped=skipped,
        fingerprint=_file_sha256(spec.path),
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
