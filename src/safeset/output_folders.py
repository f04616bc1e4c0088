"""Where a clean writes each source's files, decided before anything is read or written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from safeset.errors import SafesetError
from safeset.formats import Source
from safeset.formats.clean import output_path
from safeset.formats.folder import FolderSource, sidecars


def output_names(source: Source) -> list[str]:
    """The relative paths a source's clean writes, where the format tells: a folder's files
    at their place, dataset files at their place under the folder given as SOURCE (split
    folders keep their splits), else under their own names (see ``output_path``)."""
    if isinstance(source, FolderSource):
        root = source.root
        return list(source.files) + sorted(
            {side for rel in source.files for side in sidecars(rel) if (root / side).is_file()}
        )
    files = getattr(source, "files", None) or []
    folder = getattr(source, "folder", None)
    return [output_path(f, folder, Path()).as_posix() for f in files if isinstance(f, Path)]


def refuse_clashing_names(source: Source) -> None:
    """One SOURCE (a glob, say) holding two files of one name (``a/00000.tar``, ``b/00000.tar``)
    could not be cleaned into one folder: refused at scan time, before any work."""
    if isinstance(source, FolderSource):
        return  # paths within one folder tree are distinct by construction
    counts = Counter(output_names(source))
    clash = next((name for name, n in counts.items() if n > 1), None)
    if clash is not None:
        files = [str(f) for f in getattr(source, "files", []) if Path(f).name == Path(clash).name]
        raise SafesetError(
            f"one SOURCE holds several files named {clash} ({', '.join(files[:3])}); a cleaned "
            "copy could hold only one: pass their folders as separate SOURCE arguments"
        )


def output_folders(sources: Sequence[Source], out: Path) -> list[Path]:
    """Where each source's cleaned copy goes: all in ``out``, unless two of them hold the same
    file name (``a/00000.tar`` and ``b/00000.tar``); then each in a folder of its own under
    ``out``, named after the source's folder (``out/a``, ``out/b``). Decided before anything is
    written, so a clean never stops half-way on a name it already wrote."""
    seen: set[str] = set()
    for source in sources:
        names = set(output_names(source))
        if names & seen:
            break
        seen |= names
    else:
        return [out] * len(sources)
    labels: list[str] = []
    for source in sources:
        root = source.roots()[0]
        label = (root.name if root.is_dir() else root.parent.resolve().name) or "source"
        unique, n = label, 1
        while unique in labels:
            n += 1
            unique = f"{label}-{n}"
        labels.append(unique)
    return [out / label for label in labels]
