"""The report as a reader meets it: opened in Debian's headless Chromium, offline.

A real scan of the benign examples (hidden copies of "known" photos, exact copies among them,
so that their md5 and PDQ equal list entries, plus unreadable files) is reported, and the page
must render without a console error or any request beyond itself, show summary.json's figures,
draw its charts, and hold no image, no ``data:`` image and no list entry.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from safeset.api import scan as api_scan
from safeset.examples import ExampleSet, write_folder
from safeset.pipeline import ScanOptions
from safeset.policy import Policy

from .browser import CHROMIUM, open_page

try:
    import playwright  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - the test extra has it
    HAVE_PLAYWRIGHT = False

if not (CHROMIUM.exists() and HAVE_PLAYWRIGHT):
    # CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} or playwright missing in CI")
    pytest.skip(
        f"needs {CHROMIUM} (apt-get install chromium) and playwright", allow_module_level=True
    )


def _list_entries(known_list: Path) -> list[str]:
    return [
        line.split()[1].lower()
        for line in known_list.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.fixture(scope="module")
def scan(examples: ExampleSet, known_list: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-browser")
    source = write_folder(examples, root / "data")
    (source / "zz").mkdir()
    (source / "zz" / "empty.jpg").write_bytes(b"")
    (source / "zz" / "noise.jpg").write_bytes(b"\x00not an image" * 50)
    out = root / "scan"
    # Screened, so that the explicit-score histogram is drawn too (benign photos: low scores).
    options = ScanOptions(dihedral=True, policy=Policy(screen=True))
    api_scan([str(source)], [str(known_list)], out, options=options, progress=False)
    return out


def _lookup(summary: dict[str, Any], path: list[Any]) -> Any:
    value: Any = summary
    for part in path:
        value = value[part]
    return value


def test_report_renders_offline_with_summary_figures(
    scan: Path, known_list: Path, tmp_path: Path
) -> None:
    summary = json.loads((scan / "summary.json").read_text())
    # The scan must have flagged exact copies: their hashes equal list entries, so a report
    # that printed sample hashes would fail the list-entry check below.
    assert summary["matches"]["known"]["md5"] > 0 and summary["errors"] == 2
    page_file = scan / "report.html"
    with open_page(page_file) as opened:
        page = opened.page
        assert opened.page_errors == []
        assert opened.console_errors == []
        assert opened.foreign_requests == []
        assert opened.requests == [opened.url]

        figures = page.eval_on_selector_all(
            "[data-figure]", "els => els.map(e => [e.dataset.figure, e.textContent])"
        )
        shown: dict[str, int] = {}
        for path_json, text in figures:
            path = json.loads(path_json)
            value = int(text.replace(",", ""))
            assert value == _lookup(summary, path), (path, text)
            shown["/".join(map(str, path))] = value
        expected = {"samples", "errors", "shards"} | {f"actions/{a}" for a in summary["actions"]}
        expected |= {f"errors_by_kind/{k}" for k in summary["errors_by_kind"]}
        expected |= {f"matches/{n}/{t}" for n, by in summary["matches"].items() for t in by}
        assert expected <= set(shown)

        # Charts come from the vendored library: one uPlot canvas per chart spec.
        specs = json.loads(page.text_content("#chart-data"))
        assert {"chart-distance-0", "chart-explicit", "chart-throughput"} <= {
            s["id"] for s in specs
        }
        explicit = next(s for s in specs if s["id"] == "chart-explicit")
        assert sum(explicit["series"][0]["values"]) == summary["samples"] - summary["errors"]
        assert page.locator(".chart .uplot canvas").count() == len(specs)

        # Sorting: clicking a numeric header orders the rows by it.
        table = page.locator("#sources table").last
        table.locator("th", has_text="remove").click()
        cells = table.locator("tbody tr td:nth-child(3)").all_text_contents()
        values = [int(c.replace(",", "")) for c in cells]
        assert values == sorted(values)

        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width == 1200 and height > 900

        dom = page.content().lower()
        text = page.inner_text("body").lower()
        assert page.locator("img").count() == 0
        assert "<img" not in dom and "data:image" not in dom
        assert (
            page.eval_on_selector_all(
                "[src], [href]",
                "els => els.filter(e => /^\\s*data:/i.test(e.getAttribute('src') || "
                "e.getAttribute('href') || '')).length",
            )
            == 0
        )
        entries = _list_entries(known_list)
        assert entries
        for entry in entries:
            assert entry not in dom and entry not in text
        # The file on disk as well, not just the DOM the scripts built.
        raw = page_file.read_text().lower()
        assert not any(entry in raw for entry in entries)
        # The manifest is linked, relative to the page.
        href = page.get_attribute("a[href$='manifest.csv']", "href")
        assert (page_file.parent / href).resolve() == (scan / "manifest.csv").resolve()


def test_a_hostile_key_stays_text(scan: Path, tmp_path: Path) -> None:
    """Keys and locations come from the dataset: markup in them must not become page markup."""
    import shutil

    import pyarrow.parquet as pq

    copy = tmp_path / "scan"
    shutil.copytree(scan, copy)
    first = sorted((copy / "results").glob("*.parquet"))[0]
    assert "remove" in pq.read_table(first, columns=["action"])["action"].to_pylist()
    table = pq.read_table(first)
    hostile = '<img src="http://127.0.0.1:9/x.png"><script>console.error("ran")</script>'
    # The first flagged row: the flagged-samples table shows its key and location.
    i = table["action"].to_pylist().index("remove")
    for column in ("key", "location"):
        values = table[column].to_pylist()
        values[i] = hostile
        table = table.set_column(table.schema.get_field_index(column), column, [values])
    pq.write_table(table, first)
    from safeset.report import write_report

    with open_page(write_report(copy)) as opened:
        assert opened.console_errors == [] and opened.page_errors == []
        assert opened.foreign_requests == []
        assert opened.page.locator("img").count() == 0
        assert hostile in opened.page.inner_text("#flagged")
