"""Cleaned copies of URL tables, the Re-LAION way: the same table minus the removed rows.

Parquet keeps its schema and metadata; CSV/TSV keeps every kept record's bytes exactly as they
were (header, quoting, line endings, blank lines), so a diff shows only removed rows. Nothing is
downloaded: the scan's verdict per row, checked against the row's URL, is all a sink needs.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from safeset.sinks.base import Decisions, atomic_output
from safeset.sinks.parquet import write_filtered
from safeset.sources.url_table import (
    UrlColumns,
    field_at,
    is_delimited,
    open_binary,
    table_records,
)
from safeset.sources.urls import UrlSource, row_location


def clean_url_tables(source: UrlSource, decisions: Decisions, out: Path) -> None:
    for path in source.files:
        columns, _ = source.layout(path)
        if is_delimited(path):
            seen = clean_delimited(path, columns, decisions, out / path.name)
        else:
            seen = clean_parquet_table(path, columns, decisions, out / path.name)
        decisions.counts.files += 1
        decisions.check_all_seen(str(path), seen)


def clean_parquet_table(path: Path, columns: UrlColumns, decisions: Decisions, dest: Path) -> int:
    def keep_rows(_row_group: int, first_row: int, table: pa.Table) -> list[bool]:
        urls = table.column(columns.url).to_pylist()
        return [
            _keep(decisions, path, first_row + offset, None if url is None else str(url))
            for offset, url in enumerate(urls)
        ]

    return write_filtered(path, dest, keep_rows)


def clean_delimited(path: Path, columns: UrlColumns, decisions: Decisions, dest: Path) -> int:
    rows = 0
    with open_binary(path) as f, atomic_output(dest) as outf:
        for record, is_row in table_records(f, path):
            # The header and blank lines are not rows: they are always kept.
            if is_row:
                url = field_at(record.fields, columns.positions[0])
                keep = _keep(decisions, path, rows, url)
                rows += 1
                if not keep:
                    continue
            outf.write(record.raw)
    return rows


def _keep(decisions: Decisions, path: Path, row: int, url: str | None) -> bool:
    return decisions.kept(str(path), row, row_location(row), url=url) is not None
