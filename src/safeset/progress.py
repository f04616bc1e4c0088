"""Progress display for long work: a rich bar with samples/s and ETA, or nothing with --quiet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True, soft_wrap=True)


class _SampleRate(ProgressColumn):
    """Samples processed and their rate; the bar itself counts shards, whose sizes vary."""

    def render(self, task: Task) -> Text:
        samples = task.fields.get("samples", 0)
        elapsed = task.elapsed or 0.0
        rate = samples / elapsed if elapsed > 0 else 0.0
        return Text(f"{samples:,} samples  {rate:,.0f}/s", style="progress.data.speed")


class Tracker:
    """Counts finished work units and the samples in them."""

    def __init__(self, progress: Progress | None, description: str, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=total, samples=0) if progress else None
        self.samples = 0

    def advance(self, samples: int, units: int = 1) -> None:
        self.samples += samples
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=units, samples=self.samples)


@contextmanager
def track(description: str, total: int, *, quiet: bool, unit: str = "shards") -> Iterator[Tracker]:
    if quiet:
        yield Tracker(None, description, total)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        _SampleRate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
    )
    with progress:
        yield Tracker(progress, description, total)
