"""URL tables end to end: every URL one row with its reason, hidden copies found, the cleaned
table minus exactly the removed rows (Parquet schema kept, CSV records byte for byte)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import safeset.formats.urls as urls_module
from safeset.api import clean, scan
from safeset.cli import url_options
from safeset.engines import LocalEngine
from safeset.errors import SafesetError
from safeset.examples import DIHEDRAL_TRANSFORMS, ExampleSet
from safeset.fetch import FetchOptions
from safeset.formats import SourceOptions, open_source
from safeset.formats.parquet import ParquetSource
from safeset.formats.urls import UrlSource
from safeset.store import ScanDir

from .support import run_cli
from .urlserver import BIG_BYTES, ImageServer, closed_port_url, serving

FETCH = FetchOptions(timeout=2.0, retries=1, max_bytes=BIG_BYTES // 2, threads=8, backoff=0.01)


@dataclass(frozen=True)
class Row:
    url: str
    caption: str
    key: str
    action: str  # what the scan must decide
    reason: str | None = None  # the error it must record (prefix)


@pytest.fixture(scope="module")
def server(examples: ExampleSet) -> Iterator[ImageServer]:
    with serving({f"{r.key}.{r.ext}": r.data for r in examples.records}) as s:
        yield s


@pytest.fixture(scope="module")
def rows(examples: ExampleSet, server: ImageServer) -> list[Row]:
    """Every example image by URL, plus URLs that fail in every way, shuffled together."""
    # Rotated copies are left out: finding them is --dihedral's business, tested elsewhere, and
    # eight PDQs per image would only slow these tests down.
    hidden = [r for r in examples.records if r.hidden and not _rotated(r.hidden)]
    plain = [r for r in examples.records if not r.hidden]

    def name(r) -> str:
        return f"{r.key}.{r.ext}"

    out = [
        Row(server.url(f"/img/{name(r)}"), "a photo, of course", f"k{r.key}", "remove")
        for r in hidden
    ]
    out += [
        Row(server.url(f"/img/{name(r)}"), 'a "quoted" photo', f"k{r.key}", "keep") for r in plain
    ]
    odd = [
        # Reached after a redirect or a retry: hashed like any other.
        ("/redirect/" + name(hidden[0]), "remove", None),
        ("/moved/" + name(plain[0]), "keep", None),
        ("/flaky/" + name(hidden[1]), "remove", None),
        ("/otherbot/" + name(hidden[2]), "remove", None),
        # Never hashed: each an error row with its reason, left for review.
        ("/optout/" + name(hidden[3]), "review", "skipped: opt-out (X-Robots-Tag noai)"),
        ("/optout-ua/" + name(plain[1]), "review", "skipped: opt-out (X-Robots-Tag noimageai)"),
        ("/missing", "review", "http 404"),
        ("/error", "review", "http 500"),
        ("/down", "review", "http 503"),
        ("/slow", "review", "timeout: "),
        ("/big", "review", "too large: "),
        ("/big-stream", "review", "too large: "),
        ("/page", "review", "not a recognised image format"),
        ("/loop", "review", "too many redirects"),
    ]
    out += [
        Row(server.url(p), "odd\nmultiline, caption", f"odd{i}", a, r)
        for i, (p, a, r) in enumerate(odd)
    ]
    out.append(Row(closed_port_url(), "nobody home", "refused", "review", "connection error: "))
    out.append(Row("", "no url at all", "empty", "review", "no url"))
    random.Random(5).shuffle(out)
    return out


def _rotated(hidden: str) -> bool:
    return hidden.split("/")[1] in DIHEDRAL_TRANSFORMS


def write_parquet_table(rows: list[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "URL": [r.url or None for r in rows],
            "TEXT": [r.caption for r in rows],
            "key": [r.key for r in rows],
            "similarity": [0.25 + i / 1000 for i in range(len(rows))],
        }
    ).replace_schema_metadata({"origin": "test"})
    pq.write_table(table, path, row_group_size=16)
    return path


def csv_records(rows: list[Row]) -> list[bytes]:
    """Raw CSV records with the quirks a cleaned copy must keep: CRLF, quotes, newlines in
    fields, a byte that is not UTF-8."""
    out = []
    for r in rows:
        caption = r.caption.replace('"', '""').encode() + b" \xe9t\xe9"  # latin-1 bytes
        out.append(r.url.encode() + b',"' + caption + b'",' + r.key.encode() + b"\r\n")
    return out


def write_csv_table(records: list[bytes], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "\ufeffURL,caption,key\r\n".encode()
    body = b"".join(records[:5]) + b"\r\n" + b"".join(records[5:])  # a blank line, kept as is
    path.write_bytes(header + body)
    return path


def scan_table(table: Path, known_list: Path, out: Path) -> dict:
    return scan(
        [table],
        [known_list],
        out,
        engine=LocalEngine(workers=2),
        source_options=SourceOptions("URL", FETCH),
        progress=False,
    )


def clean_table(table: Path, scan_dir: Path, out: Path, *, keep_review: bool):
    return clean(
        [table],
        scan_dir,
        out,
        keep_review=keep_review,
        source_options=SourceOptions("URL"),
        progress=False,
    )


def result_rows(out: Path) -> list[dict]:
    rows = [row for t in ScanDir(out).iter_tables() for row in t.to_pylist()]
    return sorted(rows, key=lambda r: r["index"])


def check_rows(results: list[dict], rows: list[Row]) -> None:
    assert [r["index"] for r in results] == list(range(len(rows)))  # one row per URL
    for got, want in zip(results, rows, strict=True):
        assert (got["key"], got["url"] or "") == (want.key, want.url)
        assert got["action"] == want.action, (want, got["error"])
        if want.reason is None:
            assert got["error"] is None and got["md5"] is not None
        else:
            assert got["error"] is not None and got["error"].startswith(want.reason), got
            if not want.reason.startswith("not a recognised"):
                assert got["md5"] is None  # nothing was downloaded, nothing hashed


def test_parquet_url_table_scan_and_clean(
    tmp_path: Path, rows: list[Row], known_list: Path, server: ImageServer, examples: ExampleSet
) -> None:
    table = write_parquet_table(rows, tmp_path / "data" / "laion-part.parquet")
    summary = scan_table(table, known_list, tmp_path / "scan")
    check_rows(result_rows(tmp_path / "scan"), rows)
    assert summary["samples"] == len(rows)
    assert summary["errors_by_kind"]["http 404"] == 1
    assert summary["errors_by_kind"]["skipped"] == 2
    assert any(ua.startswith("safeset/") for ua in server.user_agents)

    original = pq.read_table(table)
    for keep_review, kept_actions in ((False, {"keep"}), (True, {"keep", "review"})):
        out = tmp_path / f"clean-{keep_review}"
        counts = clean_table(table, tmp_path / "scan", out, keep_review=keep_review)
        cleaned = pq.read_table(out / table.name)
        mask = pa.array([r.action in kept_actions for r in rows])
        assert cleaned.schema.equals(original.schema, check_metadata=True)
        assert cleaned.equals(original.filter(mask))
        assert counts.kept == cleaned.num_rows
        assert counts.left_out == len(rows) - cleaned.num_rows
    assert_no_image_bytes_in(tmp_path, examples, but=table.parent)


def assert_no_image_bytes_in(root: Path, examples: ExampleSet, but: Path) -> None:
    """Invariant 1 for URL tables: no output holds any stretch of any downloaded image."""
    probes = [r.data[len(r.data) // 2 : len(r.data) // 2 + 48] for r in examples.records]
    written = [p for p in root.rglob("*") if p.is_file() and p.parent != but]
    assert len(written) > 3
    for path in written:
        content = path.read_bytes()
        assert not any(probe in content for probe in probes), path


def test_csv_url_table_clean_is_byte_faithful(
    tmp_path: Path, rows: list[Row], known_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small shards, so that blocks start in the middle of the file, after multi-line records.
    monkeypatch.setattr(urls_module, "ROWS_PER_SHARD", 16)
    records = csv_records(rows)
    table = write_csv_table(records, tmp_path / "data" / "urls.csv")
    summary = scan_table(table, known_list, tmp_path / "scan")
    assert summary["shards"] == -(-len(rows) // 16)
    check_rows(result_rows(tmp_path / "scan"), rows)

    out = tmp_path / "clean"
    clean_table(table, tmp_path / "scan", out, keep_review=True)
    kept = [rec if row.action != "remove" else b"" for rec, row in zip(records, rows, strict=True)]
    expected = (
        "\ufeffURL,caption,key\r\n".encode() + b"".join(kept[:5]) + b"\r\n" + b"".join(kept[5:])
    )
    assert (out / "urls.csv").read_bytes() == expected


def test_format_detection(tmp_path: Path, examples: ExampleSet) -> None:
    urls_only = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"url": ["http://127.0.0.1:9/a.jpg"], "caption": ["x"]}), urls_only)
    with_bytes = tmp_path / "bytes.parquet"
    pq.write_table(
        pa.table({"jpg": [examples.records[0].data], "url": ["http://x/a.jpg"]}), with_bytes
    )
    csv = tmp_path / "t.csv"
    csv.write_text("link,text\nhttp://127.0.0.1:9/a.jpg,hello\n")

    assert isinstance(open_source(str(urls_only)), UrlSource)
    assert isinstance(open_source(str(with_bytes)), ParquetSource)  # bytes win over urls
    source = open_source(str(csv), SourceOptions(url_col="LINK"))
    assert isinstance(source, UrlSource)
    assert source.describe()["files"][0]["rows"] == 1
    folder = tmp_path / "folder"
    folder.mkdir()
    # Blank lines before the header are not rows, nor the header itself.
    (folder / "part-0.csv").write_text("\n\nurl\nhttp://127.0.0.1:9/a.jpg\n\n")
    in_folder = open_source(str(folder))
    assert isinstance(in_folder, UrlSource)
    assert in_folder.describe()["files"][0]["rows"] == 1


@pytest.mark.parametrize(
    ("columns", "url_col", "message"),
    [
        (
            {"caption": ["x"]},
            "url",
            "neither image bytes (a binary column such as jpg, png, image) nor a url column 'url'",
        ),
        ({"link": ["x"]}, "href", "nor a url column 'href' (--url-col); columns are: link"),
    ],
)
def test_parquet_with_neither_bytes_nor_urls_is_refused(
    tmp_path: Path, columns: dict, url_col: str, message: str
) -> None:
    table = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), table)
    with pytest.raises(SafesetError, match=re.escape(message)):
        open_source(str(table), SourceOptions(url_col=url_col))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"timeout": 0}, "--timeout 0 must be more than 0 seconds"),
        ({"retries": -1}, "--retries -1 must be 0 or more"),
        ({"max_image_bytes": 0}, "--max-image-bytes 0 must be more than 0"),
        ({"download_threads": 0}, "--download-threads 0 must be 1 or more"),
    ],
)
def test_download_settings_are_checked(setting: dict, message: str) -> None:
    values = {"timeout": 1.0, "retries": 0, "max_image_bytes": 1, "download_threads": 1} | setting
    with pytest.raises(SafesetError, match=re.escape(message)):
        url_options("url", **values)


def test_csv_without_url_column_is_one_line_from_the_cli(tmp_path: Path, known_list: Path) -> None:
    table = tmp_path / "data" / "t.csv"
    table.parent.mkdir()
    table.write_text("href,caption\nhttp://x/a.jpg,x\n")
    done = run_cli("scan", str(table), "--list", str(known_list), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr == (
        f"safeset: error: {table}: no url column 'url' (choose one with --url-col); "
        "columns are: href, caption\n"
    )
