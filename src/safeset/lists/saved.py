"""Lists converted once (``safeset lists build``) and loaded in seconds by later scans.

A saved list is a folder: ``meta.json`` (name, the source file's fingerprint, counts) and, per
signal type, the raw values and line numbers (``.npy``, memory-mapped on load) plus the
ready-built search index. The fingerprint is the original file's, so a scan that used the text
list and a scan that uses its saved form are the same job.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from safeset.errors import SafesetError
from safeset.lists.hashlist import HashList
from safeset.signals import hash_type

FORMAT = "safeset-saved-list"
VERSION = 1


def is_saved_list(path: Path) -> bool:
    return (path / "meta.json").is_file()


def save_list(hl: HashList, out: Path) -> None:
    """Write ``hl`` with its indexes to the folder ``out`` (complete, or not there at all)."""
    if out.exists():
        raise SafesetError(f"{out} exists; choose a new folder for the saved list")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for type_name, values in hl.values.items():
            np.save(tmp / f"{type_name}.values.npy", values)
            np.save(tmp / f"{type_name}.lines.npy", hl.lines[type_name])
            hl.index(type_name).save(tmp / f"{type_name}.index")
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "name": hl.name,
            "built_from": str(hl.path),
            "sha256": hl.fingerprint,
            "entries": hl.counts(),
            "skipped": dict(hl.skipped),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SafesetError(f"cannot write saved list {out}: {exc.strerror or exc}") from None


def load_saved_list(path: Path, name: str) -> HashList:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise SafesetError(f"{path}: unreadable saved list ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise SafesetError(f"{path}: not a saved list of this safeset version; build it again")
    values, lines, prebuilt = {}, {}, {}
    try:
        for type_name in meta["entries"]:
            values[type_name] = np.load(path / f"{type_name}.values.npy", mmap_mode="r")
            lines[type_name] = np.load(path / f"{type_name}.lines.npy", mmap_mode="r")
            prebuilt[type_name] = hash_type(type_name).load_index(path / f"{type_name}.index")
    except (OSError, ValueError, KeyError) as exc:
        raise SafesetError(f"{path}: damaged saved list ({exc}); build it again") from None
    return HashList(
        name=name,
        path=path,
        values=values,
        lines=lines,
        skipped=Counter(meta.get("skipped", {})),
        fingerprint=meta["sha256"],
        prebuilt=prebuilt,
    )
