"""The lists file: each list named, with its own PDQ threshold, action and role.

```toml
[lists.ncmec]                 # the list's name, as reasons and the manifest show it
file = "lists/ncmec"          # a list file or saved list; relative to this file
type = "md5"                  # only for one bare hash a line (as --list md5:FILE)
action = "remove"             # or "review"; default: the policy's hash_match
pdq_threshold = 24            # default: the scan's --pdq-threshold

[lists.known-fp]
file = "known-fp.txt"
role = "allow"                # a match cancels block-list matches on the same file
pdq_threshold = 8
cancels = ["stopncii"]        # only these lists' matches (default: every block list)
```

Programmes calibrate differently (a list of near-duplicates crawled from the web wants a tighter
PDQ distance than one of confirmed originals), and some lists are leads to review rather than
confirmed items to remove: hence the per-list rules. Passed as ``--list lists.toml``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.lists.hashlist import HashList, ListSpec, load_list
from safeset.signals import lookup

KEYS = {"file", "type", "action", "pdq_threshold", "role", "cancels"}
ACTIONS = ("remove", "review")
ROLES = ("block", "allow")
# Names appear inside reasons (hash:NAME:pdq:d=3): nothing that could be read as a separator.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def is_lists_file(text: str) -> bool:
    """Whether a ``--list`` argument names a lists file rather than one list."""
    if not text.lower().endswith(".toml"):
        return False
    spec = ListSpec.parse(text)  # NAME= or TYPE: before it: one list, whatever its suffix
    return spec.declared is None and "=" not in text.split(":", 1)[0]


def load_lists_file(path: Path) -> list[HashList]:
    """Every list the file names, loaded, with its rules; SafesetError on the first problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SafesetError(f"cannot read lists file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SafesetError(f"lists file {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"lists"})
    if unknown:
        raise SafesetError(f"{path}: unknown section {unknown[0]!r} (lists go in [lists.NAME])")
    tables = data.get("lists")
    if not isinstance(tables, dict) or not tables:
        raise SafesetError(f"{path}: no lists: add a [lists.NAME] table with file = ...")
    return [_load_one(path, name, table) for name, table in tables.items()]


def _load_one(path: Path, name: str, table: Any) -> HashList:
    where = f"{path}: [lists.{name}]"
    if not _NAME.fullmatch(name):
        raise SafesetError(f"{path}: list name {name!r}: use letters, digits, '_', '.', '-'")
    if not isinstance(table, dict):
        raise SafesetError(f"{where} must be a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise SafesetError(f"{where}: unknown key {unknown[0]!r} (known: {known})")
    file = table.get("file")
    if not isinstance(file, str) or not file:
        raise SafesetError(f'{where}: file = "PATH" is required')
    declared = None
    if "type" in table:
        declared = lookup(str(table["type"]))
        if declared is None:
            raise SafesetError(f"{where}: type must be pdq, md5, sha1 or sha256")
    role = _choice(table, "role", ROLES, where) or "block"
    action = _choice(table, "action", ACTIONS, where)
    if action and role == "allow":
        raise SafesetError(f"{where}: an allow list has no action (its matches cancel others)")
    threshold = table.get("pdq_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 128
    ):
        raise SafesetError(f"{where}: pdq_threshold must be a whole number 0..128 (usual: 31)")
    cancels = table.get("cancels", [])
    if role != "allow" and cancels:
        raise SafesetError(f'{where}: cancels is for allow lists (role = "allow")')
    if not isinstance(cancels, list) or not all(isinstance(c, str) for c in cancels):
        raise SafesetError(f"{where}: cancels must be a list of list names")
    spec = ListSpec(path=path.parent / file, name=name, declared=declared)
    return replace(
        load_list(spec),
        pdq_threshold=threshold,
        action=action,
        role=role,
        cancels=tuple(cancels),
    )


def _choice(table: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str | None:
    if key not in table:
        return None
    value = str(table[key]).lower()
    if value not in allowed:
        raise SafesetError(f"{where}: {key} must be {' or '.join(allowed)}, not {table[key]!r}")
    return value


def check_cancels(lists: list[HashList]) -> None:
    """Every list an allow list cancels is a block list of the same scan."""
    blocks = {hl.name for hl in lists if hl.role == "block"}
    for hl in lists:
        missing = [c for c in hl.cancels if c not in blocks]
        if missing:
            raise SafesetError(
                f"allow list {hl.name} cancels {missing[0]!r}, which is not a block list here"
            )
    if lists and not blocks:
        raise SafesetError("only allow lists given: add at least one list to match against")
