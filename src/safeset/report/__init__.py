"""The scan report: one self-contained HTML page from a scan folder (``safeset report``).

``aggregate`` reduces the results to counts and histograms in Arrow; ``html`` renders them with
the vendored chart library inlined, so that the page opens offline and requests nothing.
"""

from __future__ import annotations

from pathlib import Path

from safeset.atomic import write_atomic
from safeset.report.aggregate import ScanReport, relative_href, scan_report
from safeset.report.html import render_report

REPORT_NAME = "report.html"

__all__ = ["REPORT_NAME", "ScanReport", "render_report", "scan_report", "write_report"]


def write_report(scan_dir: Path, out: Path | None = None) -> Path:
    """Write the report of ``scan_dir`` to ``out`` (default: ``scan_dir/report.html``)."""
    out = out or scan_dir / REPORT_NAME
    report = scan_report(scan_dir)
    links = {
        name: relative_href(scan_dir / name, out)
        for name in ("manifest.csv", "summary.json", "job.json")
        if (scan_dir / name).exists()
    }
    page = render_report(report, {k.split(".")[0]: v for k, v in links.items()})
    write_atomic(out, page.encode("utf-8"))
    return out
