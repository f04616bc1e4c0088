"""Progress display for long work: a rich bar with samples/s and ETA, or nothing with --quiet.

Without a terminal (a log file, CI, a pipe) a bar cannot redraw itself and its pieces land on
separate lines, so progress is printed as a plain line every ``LINE_INTERVAL`` seconds and once
at the end instead.
"""

from __future__ import annotations

import threading
import time
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


LINE_INTERVAL = 10.0


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LineTracker(Tracker):
    """Progress as plain periodic lines: done/total, samples, rate, elapsed and ETA.

    Units advanced with no samples (shards resumed from an earlier run) count as done but not
    towards the rate, so the ETA is not fooled by them.
    """

    def __init__(self, description: str, total: int, unit: str, console: Console) -> None:
        super().__init__(None, description, total)
        self.description, self.total, self.unit = description, total, unit
        self.done = 0
        self._skipped = 0
        self._console = console
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, samples: int, units: int = 1) -> None:
        with self._lock:
            self.samples += samples
            self.done += units
            if samples == 0:
                self._skipped += units

    def line(self, *, final: bool = False) -> str:
        with self._lock:
            done, samples, worked = self.done, self.samples, self.done - self._skipped
        elapsed = time.monotonic() - self._started
        rate = samples / elapsed if elapsed > 0 else 0.0
        head = f"{self.description}: {done:,}/{self.total:,} {self.unit}, {samples:,} samples"
        if final:
            return f"{head} in {_clock(elapsed)} ({rate:,.0f}/s), done"
        eta = _clock((self.total - done) * elapsed / worked) if worked > 0 else "?"
        return f"{head}, {rate:,.0f}/s, elapsed {_clock(elapsed)}, ETA {eta}"

    def print(self, *, final: bool = False) -> None:
        self._console.print(self.line(final=final), markup=False, highlight=False)


@contextmanager
def _lines(
    description: str, total: int, unit: str, interval: float, console: Console
) -> Iterator[Tracker]:
    tracker = LineTracker(description, total, unit, console)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            tracker.print()

    ticker = threading.Thread(target=tick, name="safeset-progress", daemon=True)
    ticker.start()
    try:
        yield tracker
    finally:
        stop.set()
        ticker.join()
    tracker.print(final=True)


@contextmanager
def track(
    description: str,
    total: int,
    *,
    quiet: bool,
    unit: str = "shards",
    interval: float = LINE_INTERVAL,
    console: Console | None = None,
) -> Iterator[Tracker]:
    console = console or stderr
    if quiet:
        yield Tracker(None, description, total)
        return
    if not console.is_terminal:
        with _lines(description, total, unit, interval, console) as tracker:
            yield tracker
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
        console=console,
    )
    with progress:
        yield Tracker(progress, description, total)
