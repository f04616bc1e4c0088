"""``safeset demo``: the whole audit on a benign example, end to end, in a few seconds.

Builds a WebDataset from scikit-image's bundled photos, hides transformed copies of five of
them among unrelated crops, writes a stand-in "known" hash list of the five originals, then
runs scan and clean exactly as a user would and checks what was found.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from safeset.api import clean, scan
from safeset.engines import LocalEngine
from safeset.errors import SafesetError
from safeset.examples import build_examples, write_known_list, write_webdataset
from safeset.pipeline import ScanOptions
from safeset.reporting import print_scan_summary, stdout
from safeset.store import ScanDir

# What the demo writes inside its folder, and the mark that says the folder is the demo's.
DEMO_ENTRIES = ("dataset", "known-list.txt", "scan", "clean")
MARK = ".safeset-demo"


def prepare_folder(directory: Path) -> None:
    """Make ``directory`` ready for the demo, removing only what an earlier demo wrote there.

    A folder that holds anything else is refused: ``--dir .`` must never wipe a user's files.
    """
    if directory.exists() and not directory.is_dir():
        raise SafesetError(f"--dir {directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MARK).is_file():
            raise SafesetError(
                f"--dir {directory} is not empty and was not made by safeset demo; "
                "choose a new or empty folder"
            )
        for name in DEMO_ENTRIES:
            path = directory / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARK).write_text("made by safeset demo; rerunning the demo replaces it\n")


def run_demo(directory: Path, *, quiet: bool = False) -> None:
    prepare_folder(directory)
    examples = build_examples(distractors=60, dihedral=True)
    dataset = write_webdataset(examples, directory / "dataset")
    known = directory / "known-list.txt"
    write_known_list(examples, known)
    stdout.print(
        f"built {dataset}: {len(examples.records)} samples, {len(examples.hidden_keys)} of them "
        f"transformed copies of {len(examples.known)} 'known' photos; list: {known}"
    )
    scan_out = directory / "scan"
    summary = scan(
        [dataset],
        [known],
        scan_out,
        options=ScanOptions(dihedral=True),
        engine=LocalEngine(workers=2),
        progress=not quiet,
    )
    print_scan_summary(summary, scan_out)
    counts = clean([dataset], scan_out, directory / "clean", progress=not quiet)
    found = {
        key
        for table in ScanDir(scan_out).iter_tables(["key", "action"])
        for key, action in zip(table["key"].to_pylist(), table["action"].to_pylist(), strict=True)
        if action == "remove"
    }
    missed = examples.hidden_keys - found
    wrong = found - examples.hidden_keys
    stdout.print(
        f"cleaned copy: {directory / 'clean'} ({counts.kept} kept, {counts.left_out} left out)\n"
        f"hidden copies found: {len(examples.hidden_keys) - len(missed)}/"
        f"{len(examples.hidden_keys)}; distractors wrongly flagged: {len(wrong)}"
    )
    stdout.print(
        "next: safeset scan YOUR_DATASET --list YOUR_LIST --out scan && "
        "safeset clean YOUR_DATASET --scan scan --out clean"
    )
