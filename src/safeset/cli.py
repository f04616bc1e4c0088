"""Command line: ``safeset scan | clean | report | hash | inspect | demo``.

User-caused problems surface as one line on stderr and exit code 2; see safeset.errors.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from safeset.errors import SafesetError, check_seconds
from safeset.fetch import FetchOptions
from safeset.formats import SourceOptions
from safeset.pipeline import ScanOptions
from safeset.policy import Policy
from safeset.progress import stderr

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Audit image datasets against known-abuse hash lists; write a cleaned copy.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from safeset import __version__

        typer.echo(f"safeset {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Audit image datasets against known-abuse hash lists; write a cleaned copy."""


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
UrlCol = Annotated[
    str,
    typer.Option(help="URL tables (.csv/.tsv, or Parquet without image bytes): the url column."),
]
DEFAULT_FETCH = FetchOptions()


def url_options(
    url_col: str, timeout: float, retries: int, max_image_bytes: int, download_threads: int
) -> SourceOptions:
    """Download settings, checked here so a bad value is one line, not a usage screen."""
    check_seconds("--timeout", timeout)
    if retries < 0:
        raise SafesetError(f"--retries {retries} must be 0 or more")
    if max_image_bytes <= 0:
        raise SafesetError(f"--max-image-bytes {max_image_bytes} must be more than 0")
    if download_threads < 1:
        raise SafesetError(f"--download-threads {download_threads} must be 1 or more")
    fetch = FetchOptions(timeout, retries, max_image_bytes, download_threads)
    return SourceOptions(url_col, fetch)


ExactPDQ = Annotated[
    bool,
    typer.Option(help="Full-size decode and Meta's reference PDQ code (slower; reference hashes)."),
]
Screen = Annotated[
    bool,
    typer.Option(help="Also screen content: explicit score, faces/ages, caption terms."),
]
PolicyFile = Annotated[
    Path | None, typer.Option("--policy", help="Policy file (TOML) over the defaults.")
]


def _provenance_signals(on: bool, face_swap: bool, trust_anchors: Path | None) -> tuple:
    if not on:
        if face_swap or trust_anchors:
            raise SafesetError("--face-swap and --trust-anchors are for --provenance")
        return ()
    from safeset.provenance.signal import ProvenanceSignal

    return (ProvenanceSignal(face_swap=face_swap, trust_anchors=trust_anchors),)


def _effective_policy(path: Path | None, screen: bool) -> Policy:
    policy = Policy.load(path) if path else Policy()
    return replace(policy, screen=True) if screen else policy


lists_app = typer.Typer(help="Prepare, fetch and inspect hash lists.")
app.add_typer(lists_app, name="lists")


@lists_app.command("build")
def lists_build(
    list_spec: Annotated[str, typer.Argument(metavar="LIST", help="[NAME=][TYPE:]FILE")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the saved list to.")],
) -> None:
    """Parse a list once and save it with its search indexes; pass the folder to --list."""
    import time

    from safeset.lists import ListSpec, load_list
    from safeset.lists.saved import save_list

    started = time.monotonic()
    hl = load_list(ListSpec.parse(list_spec))
    save_list(hl, out)
    counts = ", ".join(f"{t} {n:,}" for t, n in hl.counts().items())
    typer.echo(f"saved list {hl.name} ({counts}) to {out} in {time.monotonic() - started:.1f}s")


@lists_app.command("info")
def lists_info(
    list_spec: Annotated[
        str, typer.Argument(metavar="LIST", help="[NAME=][TYPE:]FILE, a saved list or lists.toml")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by type, skipped types, fingerprint, where and when fetched; never an entry."""
    import json

    from safeset.lists.info import describe_lists, info_lines

    described = describe_lists(list_spec)
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    for d in described:
        typer.echo("\n".join(info_lines(d)))


@lists_app.command("fetch")
def lists_fetch(
    exchange: Annotated[
        str, typer.Argument(help="local_file, ncmec, stop_ncii or fb_threatexchange.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder of the fetched list (rerun: update it).")
    ],
    name: Annotated[str | None, typer.Option(help="List name (default: the folder's).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="local_file: the signal file (TYPE SIGNAL lines).")
    ] = None,
    signal_type: Annotated[
        str | None, typer.Option(help="local_file: the type of a file of bare signals.")
    ] = None,
    environment: Annotated[
        str | None, typer.Option(help="ncmec: Industry, NGO, Exploitative, ... (your agreement).")
    ] = None,
    privacy_group: Annotated[
        int | None, typer.Option(help="fb_threatexchange: the privacy group id.")
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(help="Credentials file (TOML, chmod 600); else environment variables."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Pull a list from an exchange through python-threatexchange; a rerun fetches what changed.

    Credentials: TX_NCMEC_CREDENTIALS=user:password, TX_STOPNCII_KEYS=fetch_key,subscription_key,
    TX_ACCESS_TOKEN=token, or a --credentials file (default ~/.config/safeset/credentials.toml,
    chmod 600): TOML tables ncmec (user, password), stop_ncii (fetch_function_key,
    subscription_key), fb_threatexchange (api_token). Written 0600; no entry is ever printed.
    """
    from safeset.lists.exchange import FetchRequest, run_fetch

    result = run_fetch(
        FetchRequest(
            exchange=exchange,
            out=out,
            name=name,
            file=file,
            signal_type=signal_type,
            environment=environment,
            privacy_group=privacy_group,
            credentials=credentials,
            quiet=quiet,
        )
    )
    counts = ", ".join(f"{t} {n:,}" for t, n in result.counts.items())
    how = "incremental fetch" if result.incremental else "first fetch"
    change = "list updated" if result.changed else "list unchanged"
    typer.echo(
        f"fetched list {result.name} from {exchange} ({how}): {result.updates:,} records "
        f"received, {result.added:,} new, {result.removed:,} removed; {change}: {counts} in {out}"
    )
    if result.skipped:
        kinds = ", ".join(f"{k} ({n:,})" for k, n in sorted(result.skipped.items()))
        typer.echo(f"entries skipped: {kinds}")


policy_app = typer.Typer(help="Inspect the policy that turns evidence into actions.")
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(screen: Screen = False, policy: PolicyFile = None) -> None:
    """Print the effective policy (defaults, a --policy file over them) as TOML."""
    typer.echo(_effective_policy(policy, screen).to_toml(), nl=False)


@app.command()
def scan(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Image folder, tar shards (a folder, glob or part-{00000..00009}.tar), "
            "Parquet or Hugging Face .arrow files/folders, URL tables (.csv) or url lists (.txt)."
        ),
    ],
    lists: Annotated[
        list[str],
        typer.Option(
            "--list",
            "-l",
            help="Hash list: [NAME=][TYPE:]FILE, a saved list, or a lists file (lists.toml: "
            "per-list thresholds, actions, allow lists). Repeatable.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Scan folder to write (or resume).")],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = os.cpu_count() or 1,
    dihedral: Annotated[
        bool, typer.Option(help="Also match the 8 rotations/flips (EXIF-rotated copies).")
    ] = False,
    pdq_threshold: Annotated[int, typer.Option(help="Max PDQ Hamming distance.")] = 31,
    unpad: Annotated[
        bool, typer.Option(help="Also match the picture inside a border or letterbox.")
    ] = True,
    recorded: Annotated[
        bool,
        typer.Option(help="Also match original-file hashes recorded in metadata (img2dataset)."),
    ] = True,
    expand: Annotated[
        bool, typer.Option(help="Put near-copies of remove-tier hits in this dataset to review.")
    ] = True,
    exact_pdq: ExactPDQ = False,
    force: Annotated[bool, typer.Option(help="Replace a scan folder of a different job.")] = False,
    sample_timeout: Annotated[
        float, typer.Option(help="Seconds one sample may take before it becomes an error row.")
    ] = 60.0,
    screen: Screen = False,
    policy: PolicyFile = None,
    provenance: Annotated[
        bool,
        typer.Option(
            help="Also record provenance: C2PA, IPTC/XMP, generator metadata, watermarks, "
            "opt-outs (needs the provenance extra)."
        ),
    ] = False,
    face_swap: Annotated[
        bool, typer.Option(help="With --provenance: also score faces for swap artefacts.")
    ] = False,
    trust_anchors: Annotated[
        Path | None,
        typer.Option(help="With --provenance: PEM file of C2PA signers' roots you trust."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(help="local: a process pool; ray: Ray tasks (needs the ray extra)."),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Join this Ray cluster (e.g. auto, ray://head:10001) instead of starting one."
        ),
    ] = None,
    url_col: UrlCol = "url",
    timeout: Annotated[
        float, typer.Option(help="URL tables: seconds for a whole download (connect to last byte).")
    ] = DEFAULT_FETCH.timeout,
    retries: Annotated[
        int, typer.Option(help="URL tables: retries after connection errors, 429 and 5xx.")
    ] = DEFAULT_FETCH.retries,
    max_image_bytes: Annotated[
        int, typer.Option(help="URL tables: larger downloads are abandoned (error row).")
    ] = DEFAULT_FETCH.max_bytes,
    download_threads: Annotated[
        int, typer.Option(help="URL tables: concurrent downloads per worker.")
    ] = DEFAULT_FETCH.threads,
    quiet: Quiet = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print summary.json to stdout instead of the table (for scripts)."
        ),
    ] = False,
) -> None:
    """Hash every sample, match against the lists, decide, and write results + manifest."""
    from safeset.api import scan as run_scan
    from safeset.engines import engine_named
    from safeset.reporting import print_scan_summary, print_summary_json

    check_seconds("--sample-timeout", sample_timeout)
    if not 0 <= pdq_threshold <= 128:
        raise SafesetError(f"--pdq-threshold {pdq_threshold} is out of range 0..128 (usual: 31)")
    options = ScanOptions(
        dihedral=dihedral,
        exact_pdq=exact_pdq,
        thresholds={"pdq": pdq_threshold},
        unpad=unpad,
        recorded=recorded,
        expand=expand,
        sample_timeout=sample_timeout,
        policy=_effective_policy(policy, screen),
        signals=_provenance_signals(provenance, face_swap, trust_anchors),
    )
    chosen = engine_named(engine, workers=max(1, workers), address=ray_address)
    if getattr(chosen, "note", None):
        stderr.print(f"safeset: {chosen.note}", markup=False, highlight=False)
    summary = run_scan(
        sources,
        lists,
        out,
        options=options,
        engine=chosen,
        source_options=url_options(url_col, timeout, retries, max_image_bytes, download_threads),
        force=force,
        progress=not quiet,
    )
    if json_out:
        print_summary_json(summary, out)
    else:
        print_scan_summary(summary, out)


@app.command("report")
def report_cmd(
    scan_dir: Annotated[Path, typer.Argument(help="Folder written by safeset scan.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default: SCAN_DIR/report.html)."),
    ] = None,
) -> None:
    """Write the scan's report: one HTML page that opens offline (counts, no images)."""
    from safeset.report import REPORT_NAME, write_report

    if out is not None and out.is_dir():
        out = out / REPORT_NAME
    typer.echo(f"report: {write_report(scan_dir, out)}")


@app.command()
def clean(
    sources: Annotated[list[str], typer.Argument(help="The same SOURCE arguments given to scan.")],
    scan_dir: Annotated[Path, typer.Option("--scan", help="Folder written by safeset scan.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the cleaned dataset.")],
    keep_review: Annotated[
        bool, typer.Option(help="Keep samples marked review (default: leave them out).")
    ] = False,
    url_col: UrlCol = "url",
    quiet: Quiet = False,
) -> None:
    """Write the dataset again, in its own format, without the flagged samples."""
    from safeset.api import clean as run_clean

    counts = run_clean(
        sources,
        scan_dir,
        out,
        keep_review=keep_review,
        source_options=SourceOptions(url_col=url_col),
        progress=not quiet,
    )
    unreadable = f" ({counts.unreadable} unreadable, not copied)" if counts.unreadable else ""
    if counts.folders:
        typer.echo(
            "the sources hold the same file names: each went into its own folder under "
            f"{out}: {', '.join(counts.folders)}"
        )
    typer.echo(
        f"cleaned dataset in {out}: {counts.kept} samples kept, {counts.left_out} left out"
        f"{unreadable}, {counts.files} files written"
    )


@app.command("hash")
def hash_files(
    files: Annotated[list[Path], typer.Argument(help="Image files.")],
    exact_pdq: ExactPDQ = False,
) -> None:
    """Print pdq_hex,quality,md5,path for each file (like Meta's pdq-photo-hasher)."""
    from safeset.reporting import hash_line

    failed = False
    for path in files:
        line, error = hash_line(path, exact_pdq=exact_pdq)
        if error:
            failed = True
            stderr.print(f"safeset: {error}", markup=False, highlight=False)
        else:
            typer.echo(line)
    if failed:
        raise typer.Exit(1)


@app.command("inspect")
def inspect_files(
    files: Annotated[list[Path], typer.Argument(help="Image files.")],
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per file, one per line.")
    ] = False,
    trust_anchors: Annotated[
        Path | None,
        typer.Option(help="PEM file of C2PA signer roots to trust (default: trust not checked)."),
    ] = None,
    face_swap: Annotated[bool, typer.Option(help="Score every face for swap artefacts.")] = True,
) -> None:
    """Provenance per file: C2PA, source type, generator, watermark, face swaps, opt-outs."""
    from safeset.provenance.report import run_inspect

    failed = run_inspect(
        files, json_lines=json_lines, trust_anchors=trust_anchors, face_swap=face_swap
    )
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the example.")] = Path(
        "safeset-demo"
    ),
    quiet: Quiet = False,
) -> None:
    """Build a benign example dataset with hidden "known" photos, then scan and clean it."""
    from safeset.demo import run_demo

    run_demo(directory, quiet=quiet)


def _terminated(signum, frame) -> None:
    # SIGTERM (a scheduler, systemd, kill): unwind like Ctrl-C, so that workers are ended and
    # temporary files removed, and the same command resumes.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except SafesetError as exc:
        stderr.print(f"safeset: error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("safeset: interrupted; rerun the same command to resume", markup=False)
        sys.exit(130)
