"""One self-contained HTML page from a ``ScanReport``: counts, histograms, the job's identity.

The page opens offline and asks for nothing: styles, our small script (sortable tables, chart
set-up) and the vendored chart library (uPlot, see vendor/README.md) are inlined, and a
Content-Security-Policy that admits only those exact inline blocks (by hash) and no image,
font, frame or connection is set, so that even a dataset's hostile key could not make the page
load or run anything. Every value from the dataset is HTML-escaped; chart data travels as JSON
with ``<``, ``>`` and ``&`` escaped.

What the page never holds (invariants 1 and 5): an image, a thumbnail or any hash. Samples are
named by key and location; the manifest, linked, holds their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

import safeset
from safeset.report.aggregate import ACTIONS, ScanReport

MAX_SOURCE_FILES = 20


def _asset(name: str) -> str:
    return resources.files("safeset.report").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _json_for_script(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _num(value: int | float, figure: list[Any] | None = None, decimals: int = 1) -> str:
    """A numeric cell; ``figure`` is its path in summary.json when it shows one of its numbers."""
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.{decimals}f}"
    attr = f' data-figure="{escape(json.dumps(figure))}"' if figure is not None else ""
    return f'<td class="num" data-sort="{value}"{attr}>{text}</td>'


def _text(value: Any, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}>{escape('' if value is None else str(value))}</td>"


def _table(headers: list[str], rows: list[str], foot: str = "", sortable: bool = True) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    klass = ' class="sortable"' if sortable else ""
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    tfoot = f'<tfoot><tr><td colspan="{len(headers)}">{escape(foot)}</td></tr></tfoot>'
    return (
        f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"{tfoot if foot else ''}</table>"
    )


class _Page:
    def __init__(self, report: ScanReport, links: dict[str, str]) -> None:
        self.r = report
        self.links = links
        self.charts: list[dict[str, Any]] = []
        self.sections: list[tuple[str, str, str]] = []  # id, title, body

    def section(self, ident: str, title: str, body: str) -> None:
        self.sections.append((ident, title, body))

    def chart(self, ident: str, spec: dict[str, Any], numbers: str) -> str:
        """A chart drawn by uPlot, with its numbers in a folded table for those without it."""
        self.charts.append({"id": ident, **spec})
        return (
            f'<div class="chart" id="{escape(ident)}" role="img" '
            f'aria-label="{escape(spec.get("title", ""))}"></div>'
            f"<details><summary>numbers</summary>{numbers}</details>"
        )

    # Sections, in page order.

    def overview(self) -> str:
        r = self.r
        cards = [("samples", r.samples, ["samples"], "")]
        cards += [(a, r.actions[a], ["actions", a], a) for a in ACTIONS]
        cards += [("errors", r.errors, ["errors"], ""), ("shards", r.shards, ["shards"], "")]
        html = '<div class="cards">' + "".join(
            f'<div class="card {cls}"><div class="label">{escape(label)}</div>'
            f'<div class="value" data-figure="{escape(json.dumps(path))}">{value:,}</div></div>'
            for label, value, path, cls in cards
        )
        html += "</div>"
        if r.shards_total is not None and r.shards_total != r.shards:
            html += (
                f'<p class="note">Only {r.shards:,} of the job\'s {r.shards_total:,} shards have '
                "results: the scan did not finish; rerun it to complete.</p>"
            )
        return html

    def actions(self) -> None:
        r = self.r
        rows = [
            _text(a) + _num(r.actions[a], ["actions", a])
            + _num(100 * r.actions[a] / r.samples if r.samples else 0.0, decimals=2)
            for a in ACTIONS
        ]  # fmt: skip
        body = _table(["action", "samples", "% of samples"], rows)
        if r.reasons:
            body += "<h3>Reasons (samples per rule)</h3>" + _table(
                ["reason", "samples"], [_text(x["reason"]) + _num(x["samples"]) for x in r.reasons]
            )
        self.section("actions", "Actions and reasons", body)

    def matches(self) -> None:
        r = self.r
        lists = {x.get("name"): x for x in r.summary.get("lists", []) if isinstance(x, dict)}
        if not r.matches:
            body = '<p class="note">No sample matched a hash list.</p>'
        else:
            rows = [
                _text(m["list"]) + _text(m["signal_type"])
                + _num(m["matches"], ["matches", m["list"], m["signal_type"]])
                + _num(m["samples"])
                for m in r.matches
            ]  # fmt: skip
            body = _table(["list", "signal type", "matches", "samples matched"], rows)
        body += self._list_sizes(lists)
        for n, d in enumerate(r.distances):
            title = f"{d['list']}: {d['signal_type']} match distance (Hamming bits)"
            numbers = _table(
                ["distance", "matches"],
                [_num(x) + _num(c) for x, c in zip(d["distance"], d["matches"], strict=True)],
            )
            body += f"<h3>{escape(title)}</h3>" + self.chart(
                f"chart-distance-{n}",
                {
                    "title": title,
                    "type": "bars",
                    "xlabel": "distance",
                    "x": d["distance"],
                    "series": [{"label": "matches", "values": d["matches"]}],
                },
                numbers,
            )
        self.section("matches", "Hash-list matches", body)

    def _list_sizes(self, lists: dict[str, Any]) -> str:
        rows = []
        for i, entry in enumerate(self.r.summary.get("lists", [])):
            if not isinstance(entry, dict):
                continue
            for signal_type, count in sorted((entry.get("entries") or {}).items()):
                rows.append(
                    _text(entry.get("name")) + _text(signal_type)
                    + _num(count, ["lists", i, "entries", signal_type])
                )  # fmt: skip
        if not rows:
            return ""
        return "<h3>List sizes (entries used)</h3>" + _table(
            ["list", "signal type", "entries"], rows
        )

    def screening(self) -> None:
        r = self.r
        body = ""
        if r.explicit:
            e = r.explicit
            above = (
                f"; {e['at_or_above']:,} at or above the policy threshold {e['threshold']}"
                if e.get("at_or_above") is not None
                else ""
            )
            body += (
                '<h3>Explicit-content score</h3><p class="note">'
                f"{e['screened']:,} samples scored{above}.</p>"
            )
            body += self.chart(
                "chart-explicit",
                {
                    "title": "explicit score",
                    "type": "bars",
                    "binWidth": 0.05,
                    "xlabel": "explicit score",
                    "x": [round(b + 0.025, 3) for b in e["bins"]],  # bin centres
                    "series": [{"label": "samples", "values": e["samples"], "colour": "#c0392b"}],
                },
                _table(
                    ["score from", "samples"],
                    [
                        _num(x, decimals=2) + _num(c)
                        for x, c in zip(e["bins"], e["samples"], strict=True)
                    ],
                ),
            )
        if r.ages:
            a = r.ages
            below = (
                f"; {a['below']:,} under the policy's minor age {a['minor_age']}"
                if a.get("below") is not None
                else ""
            )
            body += (
                '<h3>Apparent age of faces</h3><p class="note">'
                f"{a['total']:,} faces (looked for only where the explicit score reached the "
                f"threshold){below}.</p>"
            )
            body += self.chart(
                "chart-ages",
                {
                    "title": "apparent age",
                    "type": "bars",
                    "xlabel": "apparent age (years)",
                    "x": [b + 0.5 for b in a["bins"]],  # bin centres
                    "series": [{"label": "faces", "values": a["faces"], "colour": "#7d3c98"}],
                },
                _table(
                    ["age", "faces"],
                    [_num(x) + _num(c) for x, c in zip(a["bins"], a["faces"], strict=True) if c],
                ),
            )
        if not body:
            screened = (r.job.get("options", {}).get("policy", {}) or {}).get("screen")
            why = (
                "the results hold no screening scores"
                if screened
                else "this scan did not screen content (run scan with --screen)"
            )
            body = f'<p class="note">No explicit-score or apparent-age figures: {why}.</p>'
        self.section("screening", "Content screening", body)

    def provenance(self) -> None:
        if not self.r.provenance:
            body = (
                '<p class="note">No provenance signals in these results (no '
                "<code>provenance_*</code> result column, no <code>provenance</code> in "
                "summary.json).</p>"
            )
        else:
            rows = [
                _text(p["signal"]) + _text(p["value"]) + _num(p["samples"])
                for p in self.r.provenance
            ]
            body = _table(["signal", "value", "samples"], rows)
        self.section("provenance", "Provenance", body)

    def sources(self) -> None:
        r = self.r
        cols = ["samples", *ACTIONS, "errors", "matched"]

        def rows(entries: list[dict[str, Any]], name: str) -> tuple[list[str], str]:
            out, foot = [], ""
            for e in entries:
                if e.get(name) is None and "more" in e:
                    foot = f"{e['more']:,} more not shown (the least flagged)"
                    continue
                out.append(_text(e[name], "code") + "".join(_num(int(e.get(c) or 0)) for c in cols))
            return out, foot

        body = ""
        if r.sources:
            src_rows, foot = rows(r.sources, "source")
            body += "<h3>By source file</h3>" + _table(["source", *cols], src_rows, foot)
        shard_rows, foot = rows(r.shard_rows, "shard")
        body += "<h3>By shard</h3>" + _table(["shard", *cols], shard_rows, foot)
        self.section("sources", "Sources and shards", body)

    def errors(self) -> None:
        r = self.r
        if not r.errors_by_kind:
            body = '<p class="note">Every sample was read and decoded.</p>'
        else:
            rows = []
            for e in r.errors_by_kind:
                examples = "<br>".join(
                    f"{escape(str(x['key']))} <span class='note'>at</span> "
                    f"{escape(str(x['location']))}"
                    for x in e["examples"]
                )
                rows.append(
                    _text(e["kind"])
                    + _num(e["samples"], ["errors_by_kind", e["kind"]])
                    + f'<td class="code">{examples}</td>'
                )
            body = (
                '<p class="note">Unreadable samples are error rows with a reason; the policy '
                "decides what happens to them (default: review).</p>"
                + _table(["kind", "samples", "examples (key at location)"], rows)
            )
        self.section("errors", "Errors", body)

    def throughput(self) -> None:
        t = self.r.throughput
        body = ""
        if t.get("resumed_samples"):
            body += (
                f'<p class="note">{t["resumed_samples"]:,} samples were scanned by an earlier, '
                "interrupted run and resumed; they are not charted.</p>"
            )
        if t.get("seconds"):
            elapsed = t.get("elapsed_seconds")
            if isinstance(elapsed, int | float) and elapsed > 0:
                rate = t["cumulative"][-1] / elapsed
                body += (
                    f'<p class="note">Whole run: {elapsed:,.1f} s including list loading and '
                    f"reports, {rate:,.0f} samples/s. Timed by when each shard's results "
                    "were written.</p>"
                )
            numbers = _table(
                ["seconds", "samples/s", "samples done"],
                [
                    _num(s, decimals=2) + _num(v, decimals=0) + _num(c)
                    for s, v, c in zip(t["seconds"], t["rate"], t["cumulative"], strict=True)
                ],
                sortable=False,
            )
            body += self.chart(
                "chart-throughput",
                {
                    "title": "throughput",
                    "type": "line",
                    "xlabel": "seconds into the run",
                    "x": t["seconds"],
                    "series": [
                        {"label": "samples/s", "values": t["rate"]},
                        {"label": "samples done", "values": t["cumulative"], "colour": "#1e8449"},
                    ],
                },
                numbers,
            )
        self.section("throughput", "Throughput", body or '<p class="note">No shard results.</p>')

    def flagged(self) -> None:
        r = self.r
        n = r.actions["remove"] + r.actions["review"]
        manifest = self.links.get("manifest")
        link = f'<a href="{escape(manifest)}">manifest.csv</a>' if manifest else "manifest.csv"
        shown = len(r.flagged)
        body = (
            f'<p class="note">{n:,} samples flagged (remove or review). Their full record, hashes '
            f"included, is in {link}; "
            + (f"the first {shown:,} are listed here." if shown < n else "all are listed here.")
            + " No image or thumbnail of any sample is shown, on purpose.</p>"
        )
        if r.flagged:
            rows = [
                _text(f.get("key"), "code") + _text(f.get("action"))
                + _text(f.get("reasons"), "code") + _text(f.get("location"), "code")
                + _text(f.get("source"), "code")
                for f in r.flagged
            ]  # fmt: skip
            body += _table(["key", "action", "reasons", "location", "source"], rows)
        self.section("flagged", "Flagged samples", body)

    def job(self) -> None:
        r = self.r
        job, run = r.job, r.summary.get("run", {})
        body = "<h3>Sources</h3>"
        src_rows = []
        for s in job.get("sources", []):
            if not isinstance(s, dict):
                continue
            files = s.get("files") or s.get("paths") or []
            shown = [str(f) for f in files[:MAX_SOURCE_FILES]] if isinstance(files, list) else []
            more = len(files) - len(shown) if isinstance(files, list) else 0
            other = {k: v for k, v in s.items() if k not in ("kind", "files", "paths")}
            where = "<br>".join(escape(f) for f in shown) + (
                f"<br><span class='note'>and {more:,} more</span>" if more else ""
            )
            if other:
                where += ("<br>" if where else "") + escape(json.dumps(other, sort_keys=True))
            src_rows.append(_text(s.get("kind")) + f'<td class="code">{where}</td>')
        body += _table(["kind", "files"], src_rows, sortable=False)
        skipped = {
            x.get("name"): x.get("skipped")
            for x in r.summary.get("lists", [])
            if isinstance(x, dict)
        }
        list_rows = []
        for hl in job.get("lists", []):
            entries = ", ".join(f"{t} {n:,}" for t, n in sorted((hl.get("entries") or {}).items()))
            skip = skipped.get(hl.get("name")) or {}
            list_rows.append(
                _text(hl.get("name")) + _text(hl.get("sha256"), "code") + _text(entries)
                + _text(", ".join(f"{t} {n:,}" for t, n in sorted(skip.items())))
            )  # fmt: skip
        body += "<h3>Hash lists</h3>" + _table(
            ["name", "file fingerprint (sha256 of the list file)", "entries", "skipped"],
            list_rows,
            sortable=False,
        )
        body += (
            '<p class="note">List contents never appear in a report: only names, sizes and '
            "fingerprints.</p>"
        )
        opt_rows = [_text(k, "code") + _text(v, "code") for k, v in _options(job.get("options"))]
        body += "<h3>Options</h3>" + _table(["option", "value"], opt_rows, sortable=False)
        run_rows = [
            _text("safeset version (this report)") + _text(safeset.__version__),
            *(
                _text(label) + _text(run.get(k))
                for k, label in (
                    ("engine", "engine"),
                    ("elapsed_seconds", "elapsed seconds"),
                    ("shards_resumed", "shards resumed"),
                )
                if isinstance(run, dict) and k in run
            ),
        ]
        version = isinstance(run, dict) and run.get("safeset_version")
        if version:
            run_rows.insert(0, _text("safeset version (scan)") + _text(version))
        body += "<h3>Run</h3>" + _table(["", ""], run_rows, sortable=False)
        self.section("job", "Job", body)

    def render(self) -> str:
        r = self.r
        overview = self.overview()
        self.actions()
        self.matches()
        self.screening()
        self.provenance()
        self.errors()
        self.sources()
        self.throughput()
        self.flagged()
        self.job()
        css = _asset("vendor/uPlot.min.css") + "\n" + _asset("page.css")
        scripts = [_asset("vendor/uPlot.iife.min.js"), _asset("page.js")]
        csp = (
            "default-src 'none'; img-src 'none'; connect-src 'none'; form-action 'none'; "
            f"base-uri 'none'; style-src {_csp_hash(css)}; "
            f"script-src {' '.join(_csp_hash(s) for s in scripts)}"
        )
        links = " ".join(
            f'<a href="{escape(href)}">{escape(name)}</a>'
            for name, href in (
                ("manifest.csv", self.links.get("manifest")),
                ("summary.json", self.links.get("summary")),
                ("job.json", self.links.get("job")),
            )
            if href
        )
        nav = "".join(f'<a href="#{i}">{escape(t)}</a>' for i, t, _ in self.sections)
        warning = r.summary.get("warning")
        banner = f'<p class="warning" role="alert">{escape(warning)}</p>' if warning else ""
        sections = "".join(
            f'<section id="{i}"><h2>{escape(t)}</h2>{b}</section>' for i, t, b in self.sections
        )
        made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        for s in scripts:
            if "</script" in s.lower():
                raise ValueError("an inline script may not contain </script")
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>safeset report: {r.samples:,} samples</title><style>{css}</style></head>"
            f"<body><header><h1>safeset audit report</h1><p>{r.samples:,} samples in "
            f"{r.shards:,} shards. Files: {links}</p>{banner}{overview}</header>"
            f"<nav>{nav}</nav><main>{sections}"
            f"<footer>Made by safeset {escape(safeset.__version__)} on {made} from the scan "
            "folder's results. It holds counts, histograms, sample keys and locations only: no "
            "image, no thumbnail, no hash.</footer></main>"
            f'<script type="application/json" id="chart-data">{_json_for_script(self.charts)}'
            "</script>" + "".join(f"<script>{s}</script>" for s in scripts) + "</body></html>"
        )


def _options(options: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Options flattened to dotted names; term lists shown by size (policy show prints them)."""
    if not isinstance(options, dict):
        return []
    out: list[tuple[str, str]] = []
    for k, v in sorted(options.items()):
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_options(v, name + "."))
        elif isinstance(v, list):
            out.append((name, f"{len(v)} terms" if name.startswith("policy.terms") else str(v)))
        else:
            out.append((name, json.dumps(v)))
    return out


def render_report(report: ScanReport, links: dict[str, str]) -> str:
    """The report page; ``links`` maps manifest/summary/job to hrefs relative to the page."""
    return _Page(report, links).render()
