"""A named hash list held as compact arrays, and the ``--list`` argument that names one."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from safeset.errors import SafesetError
from safeset.lists.parse import read_blocks
from safeset.matching.exact_index import ExactIndex
from safeset.matching.pdq_index import PDQIndex
from safeset.signal_types import SIGNAL_TYPES, SignalType, lookup


@dataclass(frozen=True)
class ListSpec:
    """``[NAME=][TYPE:]FILE`` as given on the command line."""

    path: Path
    name: str
    declared: type[SignalType] | None = None

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


@dataclass
class HashList:
    """Entries of one list grouped by signal type: raw values plus the line each came from."""

    name: str
    path: Path
    values: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    skipped: Counter[str] = field(default_factory=Counter)
    # sha256 of the file: identifies the list in job records without revealing any entry.
    fingerprint: str = ""
    # Indexes loaded from a saved list (safeset lists build), by signal type.
    prebuilt: dict[str, ExactIndex | PDQIndex] = field(default_factory=dict)
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

    def index(self, type_name: str) -> ExactIndex | PDQIndex:
        """The search index for one signal type: prebuilt if saved, else built now."""
        if type_name not in self.prebuilt:
            self.prebuilt[type_name] = SIGNAL_TYPES[type_name].build_index(self.values[type_name])
        return self.prebuilt[type_name]

    def __len__(self) -> int:
        return sum(len(v) for v in self.values.values())

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
