"""Files that appear under their final name only once completely written.

Everything safeset writes goes through here: a kill at any moment leaves either the old file,
the whole new one, or a dot-prefixed ``.tmp`` that the next run removes, never a partial file
under a final name (invariant 6).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from safeset.errors import SafesetError


@contextmanager
def atomic_file(path: Path, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    if not overwrite and path.exists():
        raise SafesetError(f"refusing to overwrite {path}")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SafesetError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: afterwards it holds either its old content or all of it."""
    with atomic_file(path) as f:
        f.write(data)
