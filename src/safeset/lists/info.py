"""``safeset lists info LIST``: what a list holds, by count; never an entry.

Counts by signal type, entries skipped and why (types by name), the fingerprint that job records
use, and for a fetched list where and when it was fetched. For a lists file, the same for each
list with its rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safeset.lists.hashlist import HashList, ListSpec, load_list
from safeset.lists.saved import is_saved_list


def describe_lists(text: str) -> list[dict[str, Any]]:
    """One plain-data description per list that ``text`` (a ``--list`` argument) names."""
    from safeset.lists.config import is_lists_file, load_lists_file

    if is_lists_file(text):
        return [describe(hl) for hl in load_lists_file(Path(text))]
    return [describe(load_list(ListSpec.parse(text)))]


def describe(hl: HashList) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": hl.name,
        "path": str(hl.path) if hl.path is not None else None,
        "entries": hl.counts(),
        "skipped": dict(sorted(hl.skipped.items())),
        "sha256": hl.fingerprint,
        **hl.rules(),
    }
    if hl.path is None:  # built in memory (HashList.from_hashes)
        return out
    if hl.path.is_dir() and is_saved_list(hl.path):
        meta = json.loads((hl.path / "meta.json").read_text())
        out["saved_from"] = meta.get("built_from")
        if "fetched" in meta:
            out["fetched"] = meta["fetched"]
    else:
        stat = hl.path.stat()
        out["file"] = {
            "bytes": stat.st_size,
            "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds"),
        }
    return out


def info_lines(d: dict[str, Any]) -> list[str]:
    """The terminal form of ``describe``."""
    counts = ", ".join(f"{t} {n:,}" for t, n in d["entries"].items())
    lines = [f"list {d['name']}: {counts}", f"  path: {d['path']}", f"  sha256: {d['sha256']}"]
    if d["skipped"]:
        kinds = ", ".join(f"{k} ({n:,})" for k, n in d["skipped"].items())
        lines.append(f"  skipped: {kinds}")
    rules = [f"role {d['role']}"]
    if d["action"]:
        rules.append(f"action {d['action']}")
    if d["pdq_threshold"] is not None:
        rules.append(f"pdq_threshold {d['pdq_threshold']}")
    if d["cancels"]:
        rules.append(f"cancels {', '.join(d['cancels'])}")
    lines.append(f"  rules: {'; '.join(rules)}")
    if "fetched" in d:
        f = d["fetched"]
        lines.append(
            f"  fetched from {f['exchange']} (collaboration {f['collab']}) at {f['fetched_at']}"
            f"; first fetched {f['first_fetched_at']}; {f['fetches']} fetches"
        )
        if f.get("checkpoint_time"):
            lines.append(f"  exchange checkpoint: {f['checkpoint_time']}")
    elif d.get("saved_from"):
        lines.append(f"  saved list built from {d['saved_from']}")
    if "file" in d:
        lines.append(f"  file: {d['file']['bytes']:,} bytes, modified {d['file']['modified']}")
    return lines
