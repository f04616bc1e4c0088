"""Exports written by python-threatexchange's own CLI load as they are, in both output forms.

The CLI runs offline on local-file collaborations: one of benign example photos' PDQs plus
signals of types safeset has no use for, and one whose signal is a known false positive.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from safeset.errors import SafesetError
from safeset.examples import ExampleSet, _jpeg, write_folder
from safeset.lists import ListSpec, load_list
from safeset.signals.image import image_facts

from .support import run_cli

pytest.importorskip("threatexchange")

TESTS = Path(__file__).resolve().parent
NON_IMAGE = {"video_md5", "video_sha256", "url", "url_md5", "raw_text"}
EXPECTED_SKIPPED = {f"unsupported type {t}": 1 for t in NON_IMAGE} | {"marked false positive": 1}


def _tx(state: Path, *args: str) -> str:
    """Run python-threatexchange's CLI (``threatexchange ...``) with its state in ``state``."""
    env = {
        **os.environ,
        "TX_STATEDIR": str(state),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "threatexchange", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def exports(examples: ExampleSet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tx")
    state = root / "state"
    state.mkdir()
    rng = random.Random(3)
    known = {
        name.split(".")[0]: image_facts(_jpeg(img)).pdq.hex for name, img in examples.known.items()
    }
    (root / "signals.txt").write_text(
        f"pdq {known['astronaut']}\n"
        f"pdq {known['chelsea']}\n"
        f"video_md5 {rng.randbytes(16).hex()}\n"
        f"video_sha256 {rng.randbytes(32).hex()}\n"
        "url https://example.org/a/page\n"
        f"url_md5 {rng.randbytes(16).hex()}\n"
        "raw_text some words of text\n"
    )
    (root / "false_positives.txt").write_text(f"pdq {known['coffee']}\n")
    _tx(state, "config", "extensions", "add", "tx_fp_exchange")
    _tx(state, "config", "collab", "edit", "local_file", "--create", "--filename",
        str(root / "signals.txt"), "Sample Collab")  # fmt: skip
    _tx(state, "config", "collab", "edit", "false_positive_file", "--create", "--filename",
        str(root / "false_positives.txt"), "Known FPs")  # fmt: skip
    _tx(state, "fetch")
    forms = {
        "csv": ("dataset", "-P", "--csv"),
        "print": ("dataset", "-P"),
        "print-one-collab": ("dataset", "-P", "-c", "Sample Collab"),
        "signals-only": ("dataset", "-P", "-S"),
    }
    out = {}
    for form, args in forms.items():
        out[form] = root / f"export-{form}.{'csv' if form == 'csv' else 'txt'}"
        out[form].write_text(_tx(state, *args))
    out["known"] = root / "known.json"
    out["known"].write_text(json.dumps(known))
    return out


def test_csv_export_as_written(exports: dict[str, Path]) -> None:
    text = exports["csv"].read_text()
    assert text.startswith("signal_type,signal_str,collab,category,tags")  # what README says
    assert "NEGATIVE_CLASS" in text and "Known FPs" in text  # the false positive is in it
    hl = load_list(ListSpec.parse(str(exports["csv"])))
    known = json.loads(exports["known"].read_text())
    assert hl.counts() == {"pdq": 2}
    assert {bytes(v).hex() for v in hl.values["pdq"]} == {known["astronaut"], known["chelsea"]}
    assert hl.skipped == EXPECTED_SKIPPED


def test_printed_export_as_written(exports: dict[str, Path]) -> None:
    text = exports["print"].read_text()
    assert "'Sample Collab' INVESTIGATION_SEED" in text and "NEGATIVE_CLASS" in text
    hl = load_list(ListSpec.parse(str(exports["print"])))
    assert hl.counts() == {"pdq": 2}
    assert hl.skipped == EXPECTED_SKIPPED
    csv_list = load_list(ListSpec.parse(str(exports["csv"])))
    assert {bytes(v) for v in hl.values["pdq"]} == {bytes(v) for v in csv_list.values["pdq"]}


def test_printed_export_of_one_collab(exports: dict[str, Path]) -> None:
    hl = load_list(ListSpec.parse(str(exports["print-one-collab"])))
    assert hl.counts() == {"pdq": 2}
    assert hl.skipped == {f"unsupported type {t}": 1 for t in NON_IMAGE}


def test_signals_only_export(exports: dict[str, Path]) -> None:
    # -S prints no opinion, so the false positive cannot be told apart: it loads as an entry.
    hl = load_list(ListSpec.parse(str(exports["signals-only"])))
    assert hl.counts() == {"pdq": 3}
    assert hl.skipped == {f"unsupported type {t}": 1 for t in NON_IMAGE}


@pytest.mark.parametrize("form", ["csv", "print"])
def test_malformed_hash_in_an_export_names_the_line(
    exports: dict[str, Path], tmp_path, form
) -> None:
    known = json.loads(exports["known"].read_text())
    lines = exports[form].read_text().splitlines()
    bad = next(n for n, line in enumerate(lines) if known["chelsea"] in line)
    lines[bad] = lines[bad].replace(known["chelsea"], known["chelsea"][:-2])
    path = tmp_path / exports[form].name
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SafesetError) as err:
        load_list(ListSpec.parse(str(path)))
    assert f"{path.name}:{bad + 1}: pdq hash must be 64 hex digits" in str(err.value)
    assert known["chelsea"][:-2] not in str(err.value)


def test_scan_with_an_export_reports_skipped_types(
    examples: ExampleSet, exports: dict[str, Path], tmp_path: Path
) -> None:
    source = write_folder(examples, tmp_path / "data")
    out = tmp_path / "scan"
    result = run_cli("scan", str(source), "--list", f"te={exports['csv']}", "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("list te: entries skipped"))
    for name in NON_IMAGE:
        assert f"unsupported type {name} (1)" in line
    assert "marked false positive (1)" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lists"][0]["skipped"] == EXPECTED_SKIPPED
    assert summary["matches"]["te"]["pdq"] >= 8  # copies of the two listed photos
    manifest = (out / "manifest.csv").read_text()
    coffee = {r.key for r in examples.records if r.hidden and r.hidden.startswith("coffee/")}
    assert not any(f"{key}." in manifest for key in coffee)  # the false positive matched nothing


@pytest.mark.parametrize(
    "text",
    [
        "pdq {h}\nwhirlpool {h}\n",  # file-exchange lines
        "signal_type,signal_str,collab,category,tags\npdq,{h},c,POSITIVE_CLASS,\nwhirlpool,{h},c,,\n",
        "pdq {h}\nwhirlpool {h} 'c' POSITIVE_CLASS\n",  # threatexchange dataset -P
        "pdq,{h}\nwhirlpool,{h}\n",  # headerless CSV
    ],
)
def test_any_type_name_is_skipped_by_name_in_every_format(tmp_path: Path, text: str) -> None:
    h = random.Random(4).randbytes(32).hex()
    path = tmp_path / "list.txt"
    path.write_text(text.format(h=h))
    hl = load_list(ListSpec.parse(str(path)))
    assert hl.counts() == {"pdq": 1}
    assert hl.skipped == {"unsupported type whirlpool": 1}


def test_csv_field_with_a_line_break_is_one_record(tmp_path: Path) -> None:
    # csv.DictWriter, as threatexchange dataset --csv uses it, quotes a raw_text holding a break.
    import csv

    h = random.Random(5).randbytes(32).hex()
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["signal_type", "signal_str", "collab", "category", "tags"])
        writer.writeheader()
        writer.writerow({"signal_type": "raw_text", "signal_str": 'two\nlines, "quoted"'})
        writer.writerow({"signal_type": "pdq", "signal_str": h, "category": "POSITIVE_CLASS"})
        writer.writerow({"signal_type": "pdq", "signal_str": h[:-2]})
    with pytest.raises(SafesetError, match=r"export.csv:5: pdq hash must be 64 hex digits"):
        load_list(ListSpec.parse(str(path)))
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    hl = load_list(ListSpec.parse(str(path)))
    assert hl.counts() == {"pdq": 1} and hl.skipped == {"unsupported type raw_text": 1}
    assert hl.lines["pdq"].tolist() == [4]
