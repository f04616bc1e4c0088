"""Files that appear under their final name only once completely written.

Everything safeset writes goes through here: a kill at any moment leaves either the old file,
the whole new one, or a ``.safeset-*.tmp`` file that the next run removes, never a partial file
under a final name (invariant 6).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from safeset.errors import SafesetError

TMP_PREFIX = ".safeset-"
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    # Read once, at import (os.umask can only be read by setting it): before any thread runs.
    mask = os.umask(0)
    os.umask(mask)
    return mask


# What a file created with open() would get; mkstemp's own 0600 is for secrets, which a
# caller asks for with ``mode=0o600`` (saved lists).
DEFAULT_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_file(
    path: Path, *, overwrite: bool = True, mode: int = DEFAULT_MODE
) -> Iterator[BinaryIO]:
    if not overwrite and path.exists():
        raise SafesetError(f"refusing to overwrite {path}")
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A fresh name (O_EXCL) for every write: a fixed one such as ".NAME.tmp" could be the
        # name of another file being written, a dataset's own file among them.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=TMP_SUFFIX)
        tmp = Path(name)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise SafesetError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temporary file a killed write left behind."""
    return path.name.startswith(TMP_PREFIX) and path.name.endswith(TMP_SUFFIX)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: afterwards it holds either its old content or all of it."""
    with atomic_file(path) as f:
        f.write(data)
