"""What the terminal shows: scan summaries and ``hash`` lines. Counts and hashes, never images."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from safeset.report import REPORT_NAME
from safeset.signals.image import UnreadableImage, image_facts

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_scan_summary(summary: dict[str, Any], out: Path) -> None:
    actions = summary["actions"]
    table = Table(title=f"safeset scan: {summary['samples']:,} samples", show_header=True)
    table.add_column("action")
    table.add_column("samples", justify="right")
    for action in ("remove", "review", "keep"):
        table.add_row(action, f"{actions[action]:,}")
    stdout.print(table)
    for name, by_type in summary["matches"].items():
        detail = ", ".join(f"{t} {n:,}" for t, n in by_type.items())
        stdout.print(f"matches on list {name}: {detail}")
    if summary["errors"]:
        kinds = ", ".join(f"{k} ({n:,})" for k, n in summary["errors_by_kind"].items())
        stdout.print(f"unreadable samples (marked review): {kinds}")
    stdout.print(f"manifest: {out / 'manifest.csv'}   summary: {out / 'summary.json'}")
    if (out / REPORT_NAME).is_file():
        stdout.print(f"report: {out / REPORT_NAME} (open it in a browser; it works offline)")
    if "warning" in summary:
        stdout.print(f"\nWARNING: {summary['warning']}\n", style="bold red")


def print_summary_json(summary: dict[str, Any], out: Path) -> None:
    """summary.json as written, on stdout alone, for scripts; a warning also goes to stderr."""
    sys.stdout.write((out / "summary.json").read_text(encoding="utf-8") + "\n")
    sys.stdout.flush()
    if "warning" in summary:
        stderr.print(f"WARNING: {summary['warning']}", style="bold red")


def hash_line(path: Path, *, exact_pdq: bool = False) -> tuple[str, str | None]:
    """``pdq_hex,quality,md5,path`` for one file, or an error message."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "", f"{path}: {exc.strerror or exc}"
    try:
        pdq = image_facts(data, exact_pdq=exact_pdq).pdq
    except UnreadableImage as exc:
        return "", f"{path}: {exc}"
    return f"{pdq.hex},{pdq.quality},{hashlib.md5(data).hexdigest()},{path}", None
