"""One job at a time per output folder.

Two scans writing one scan folder at once would delete each other's temporary files and
interleave results. A job holds an exclusive ``flock`` on a file in its output folder while it
runs (a scan: ``DIR/.safeset-lock``); the file's first line is the holder's pid, for the
message, and the rest is whatever the job records there (a clean: what it is writing). The
kernel drops the lock when its holder exits, however it exits (kill -9 included), so a lock is
never stale: a file left behind by a dead process is simply taken over, and what it recorded
is handed to the next holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from safeset.errors import SafesetError

LOCK_NAME = ".safeset-lock"


@dataclass
class Held:
    path: Path
    created: bool  # the file did not exist before this job
    previous: str  # what the last holder recorded (after its pid line)
    _fd: int
    recorded: bool = False

    def record(self, text: str) -> None:
        """Replace what the file records (after the pid line)."""
        _write(self._fd, text)
        self.recorded = True


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{text}".encode(), 0)


@contextlib.contextmanager
def exclusive(folder: Path, what: str, name: str = LOCK_NAME) -> Iterator[Held]:
    """Hold ``folder/name`` for the block; SafesetError at once if another process holds it.

    A lock file this job created stays after it (deleting a lock file lets a third process
    lock a new one while a second still holds the old), unless the job refuses the folder
    with a SafesetError raised before it records anything.
    """
    if folder.exists() and not folder.is_dir():
        raise SafesetError(f"{folder} exists and is not a folder")
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SafesetError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").split("\n")[0] or "unknown"
            raise SafesetError(
                f"another {what} (pid {holder}) is writing to {folder}; wait for it to finish "
                "or choose another folder"
            ) from None
        previous = os.pread(fd, 1 << 20, 0).decode(errors="replace").partition("\n")[2]
        _write(fd, previous)
        held = Held(path, created, previous, fd)
        try:
            yield held
        except SafesetError:
            if created and not held.recorded:
                path.unlink(missing_ok=True)  # refused as it was: leave nothing of ours
            raise
    finally:
        os.close(fd)  # releases the lock
