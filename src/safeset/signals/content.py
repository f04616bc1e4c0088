"""Content signals: facts about a sample beyond its hashes, computed a batch at a time.

A content signal (explicit score, faces and apparent ages, caption terms, provenance marks...)
is one step of the per-shard pipeline: it reads what earlier steps left in each record (the
sample, its decoded image, its result row) and adds its own result columns, which policy rules
then read by name. Signals load their models once per worker process, on first use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

if TYPE_CHECKING:
    from safeset.pipeline import Record
    from safeset.policy import Policy


class Signal(ABC):
    name: ClassVar[str]
    #: The result columns this signal writes (null where it has nothing to say).
    fields: ClassVar[tuple[pa.Field, ...]]
    #: Signals whose columns this one reads, so must run first.
    after: ClassVar[tuple[str, ...]] = ()

    def describe(self) -> dict:
        """What about this signal's settings makes two scans different jobs (none by default)."""
        return {}

    def check_available(self) -> None:  # noqa: B027 - optional: most signals need nothing
        """Fail before any work, with a SafesetError saying what to install, if this signal
        cannot run here. Cheap: models are loaded on first use, in each worker."""

    @abstractmethod
    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        """Add this signal's columns to each record's row (``record.image`` is None where the
        sample did not decode)."""
