"""A lists file: per-list PDQ thresholds, actions and allow lists, through scan and clean."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from safeset.errors import SafesetError
from safeset.examples import ExampleSet, _jpeg, write_folder
from safeset.lists.allow import cancels
from safeset.lists.config import load_lists_file
from safeset.matching.matcher import Match
from safeset.policy import Action, Evidence, Policy
from safeset.signals.image import image_facts

from .support import all_rows, run_cli

TIGHT = 8


def _record(examples: ExampleSet, hidden: str):
    return next(r for r in examples.records if r.hidden == hidden)


def _keys(examples: ExampleSet, photo: str) -> set[str]:
    return {r.key for r in examples.records if r.hidden and r.hidden.split("/")[0] == photo}


def _pdq(data: bytes) -> str:
    return image_facts(data).pdq.hex


@pytest.fixture(scope="module")
def job(examples: ExampleSet, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("rules")
    source = write_folder(examples, root / "data")
    originals = {name.split(".")[0]: _jpeg(img) for name, img in examples.known.items()}
    allowed = _record(examples, "astronaut/recompressed")  # a "known false positive"
    exact_and_allowed = _record(examples, "astronaut/blurred")
    lists = root / "lists"
    lists.mkdir()
    # The original's PDQ; and the md5 of one planted copy, so that copy is also an exact match.
    md5 = hashlib.md5(exact_and_allowed.data).hexdigest()
    (lists / "ncmec.txt").write_text(f"pdq {_pdq(originals['astronaut'])}\nmd5 {md5}\n")
    (lists / "leads.txt").write_text(f"pdq {_pdq(originals['chelsea'])}\n")
    (lists / "coffee.txt").write_text(f"pdq {_pdq(originals['coffee'])}\n")
    (lists / "fp.txt").write_text(
        f"# known false positives\npdq {_pdq(allowed.data)}\npdq {_pdq(exact_and_allowed.data)}\n"
    )
    (root / "lists.toml").write_text(
        f"""
[lists.ncmec]
file = "lists/ncmec.txt"
action = "remove"

[lists.leads]
file = "lists/leads.txt"
action = "review"

[lists.coffee-loose]
file = "lists/coffee.txt"

[lists.coffee-tight]
file = "lists/coffee.txt"
pdq_threshold = {TIGHT}

[lists.fp]
file = "lists/fp.txt"
role = "allow"
pdq_threshold = 4
"""
    )
    scan = run_cli(
        "scan", str(source), "--list", str(root / "lists.toml"), "--out", str(root / "scan"), "-q"
    )
    assert scan.returncode == 0, scan.stderr
    clean = run_cli(
        "clean", str(source), "--scan", str(root / "scan"), "--out", str(root / "clean"), "-q"
    )
    assert clean.returncode == 0, clean.stderr
    # Folder keys are relative paths (0000/000012.jpg); the examples name them by stem.
    rows = {Path(row["key"]).stem: row for row in all_rows(root / "scan")}
    return root, rows, allowed, exact_and_allowed, scan.stdout


def _matched(row, name: str) -> list[dict]:
    return [m for m in row["matches"] if m["list"] == name]


def test_each_list_has_its_own_pdq_threshold(examples: ExampleSet, job) -> None:
    _, rows, *_ = job
    coffee = _keys(examples, "coffee")
    loose = {k: _matched(rows[k], "coffee-loose") for k in coffee}
    distances = {k: m[0]["distance"] for k, m in loose.items() if m}
    # The test means something only if the tight threshold splits the copies the loose one finds.
    assert any(d <= TIGHT for d in distances.values())
    assert any(d > TIGHT for d in distances.values())
    for key in coffee:
        tight = _matched(rows[key], "coffee-tight")
        if key in distances and distances[key] <= TIGHT:
            assert tight and tight[0]["distance"] == distances[key]
        else:
            assert not tight
    # Unrelated samples match neither.
    for key in examples.distractor_keys:
        assert not rows[key]["matches"], key


def test_each_list_has_its_own_action(examples: ExampleSet, job) -> None:
    _, rows, *_ = job
    chelsea = [k for k in _keys(examples, "chelsea") if _matched(rows[k], "leads")]
    assert len(chelsea) >= 5
    for key in chelsea:
        assert rows[key]["action"] == "review"
        assert any(r.startswith("hash:leads:pdq:d=") for r in rows[key]["reasons"])
    astronaut = [
        k
        for k in _keys(examples, "astronaut")
        if _matched(rows[k], "ncmec") and not _matched(rows[k], "fp")
    ]
    assert len(astronaut) >= 2  # copies whose PDQ the allow list does not reach
    assert all(rows[k]["action"] == "remove" for k in astronaut)


def test_allow_list_cancels_a_perceptual_match_not_an_exact_one(job) -> None:
    root, rows, allowed, exact_and_allowed, _ = job
    row = rows[allowed.key]
    assert _matched(row, "ncmec") and _matched(row, "fp")  # both matched; the allow list wins
    assert row["action"] == "keep"
    assert "allowed:fp:entry 2" in row["reasons"]
    assert any(r.startswith("cancelled:hash:ncmec:pdq:") for r in row["reasons"])
    # This copy is byte-identical to a listed md5: a PDQ false-positive entry cannot excuse it.
    row = rows[exact_and_allowed.key]
    assert {m["signal_type"] for m in _matched(row, "ncmec")} == {"md5", "pdq"}
    assert _matched(row, "fp")
    assert row["action"] == "remove"
    assert "hash:ncmec:md5:d=0" in row["reasons"]
    summary = json.loads((root / "scan" / "summary.json").read_text())
    rules = {hl["name"]: (hl["role"], hl["action"], hl["pdq_threshold"]) for hl in summary["lists"]}
    assert rules["fp"] == ("allow", None, 4) and rules["leads"] == ("block", "review", None)
    assert rules["coffee-tight"] == ("block", None, TIGHT)


def test_clean_keeps_allowed_samples_and_leaves_out_the_rest(examples: ExampleSet, job) -> None:
    root, rows, allowed, exact_and_allowed, _ = job
    written = {
        hashlib.md5(p.read_bytes()).hexdigest()
        for p in (root / "clean").rglob("*")
        if p.is_file() and p.suffix in (".jpg", ".png")
    }
    by_key = {r.key: hashlib.md5(r.data).hexdigest() for r in examples.records}
    flagged = {k for k, row in rows.items() if row["action"] != "keep"}
    assert by_key[allowed.key] in written
    assert by_key[exact_and_allowed.key] not in written
    assert flagged and not {by_key[k] for k in flagged} & written
    assert {by_key[k] for k, row in rows.items() if row["action"] == "keep"} <= written


def test_list_rules_are_part_of_the_job(job) -> None:
    root, *_ = job
    toml = (root / "lists.toml").read_text()
    changed = root / "changed.toml"
    changed.write_text(toml.replace('action = "review"', 'action = "remove"'))
    again = run_cli(
        "scan", str(root / "data"), "--list", str(changed), "--out", str(root / "scan"), "-q"
    )
    assert again.returncode == 2 and "different job" in again.stderr
    job_lists = json.loads((root / "scan" / "job.json").read_text())["lists"]
    assert {hl["name"]: hl["action"] for hl in job_lists}["leads"] == "review"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[lists.a]\nfile = "l.txt"\naction = "keep"\n', "action must be remove or review"),
        ('[lists.a]\nfile = "l.txt"\npdq_threshold = 200\n', "pdq_threshold must be"),
        ('[lists.a]\nfile = "l.txt"\nrole = "allow"\naction = "remove"\n', "allow list has no"),
        ('[lists.a]\nfile = "l.txt"\ncancels = ["b"]\n', "cancels is for allow lists"),
        ('[lists.a]\nfile = "l.txt"\nthreshold = 3\n', "unknown key 'threshold'"),
        ('[lists."a:b"]\nfile = "l.txt"\n', "list name"),
        ("[lists.a]\n", "file = "),
        ("[list.a]\n", "unknown section 'list'"),
        ("lists = 3", "no lists"),
    ],
)
def test_lists_file_mistakes_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "l.txt").write_text(f"pdq {'ab' * 32}\n")
    path = tmp_path / "lists.toml"
    path.write_text(body)
    with pytest.raises(SafesetError, match=message):
        load_lists_file(path)


def test_cancels_names_block_lists_of_the_scan(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text(f"pdq {'ab' * 32}\n")
    (tmp_path / "lists.toml").write_text(
        '[lists.a]\nfile = "l.txt"\n[lists.fp]\nfile = "l.txt"\nrole = "allow"\ncancels = ["b"]\n'
    )
    images = tmp_path / "images"  # a folder of no images is refused before lists are read
    images.mkdir()
    (images / "a.jpg").write_bytes(_jpeg(Image.new("RGB", (32, 32))))
    result = run_cli("scan", str(images), "--list", str(tmp_path / "lists.toml"), "-o", "x")
    assert result.returncode == 2
    assert "allow list fp cancels 'b', which is not a block list here" in result.stderr


def _m(name: str, signal: str, role: str = "block", part: str = "a.jpg", **kw) -> Match:
    return Match(name, 3, signal, 5, 0, part, role=role, **kw)


def test_allow_rules() -> None:
    block, allow = _m("ncmec", "pdq"), _m("fp", "pdq", role="allow")
    assert cancels(allow, block)
    assert not cancels(allow, _m("ncmec", "pdq", part="b.jpg"))  # another file of the sample
    assert not cancels(allow, _m("ncmec", "md5"))  # perceptual never excuses exact
    assert cancels(_m("fp", "md5", role="allow"), block)  # this very file is known benign
    assert not cancels(_m("fp", "pdq", role="allow", cancels=("other",)), block)
    decision = Policy().decide(Evidence(matches=[block, allow]))
    assert decision.action is Action.KEEP
    assert decision.reasons == ("allowed:fp:entry 3", "cancelled:hash:ncmec:pdq:d=5")
    review = Policy().decide(Evidence(matches=[_m("leads", "pdq", action="review")]))
    assert review.action is Action.REVIEW


def _flip(value: bytes, bits: int) -> bytes:
    """``value`` with its first ``bits`` bits flipped: a PDQ exactly ``bits`` away."""
    n = int.from_bytes(value, "big") ^ (((1 << bits) - 1) << (256 - bits))
    return n.to_bytes(32, "big")


def _pdq_signals(*values: tuple[bytes, str]):
    """One sample's PDQ values, each on the stored file named beside it."""
    from safeset.matching.matcher import SampleSignals
    from safeset.signals import HashValue

    signals = SampleSignals()
    for value, file in values:
        signals.add("pdq", [HashValue(value)], file)
    return signals


def test_matcher_thresholds_and_near_misses_are_per_list(tmp_path: Path) -> None:
    from dataclasses import replace

    from safeset.lists import ListSpec, load_list
    from safeset.matching.matcher import Matcher

    entry = bytes(range(32))
    (tmp_path / "l.txt").write_text(f"pdq {entry.hex()}\n")
    base = load_list(ListSpec.parse(str(tmp_path / "l.txt")))
    tight = replace(base, name="tight", pdq_threshold=4, prebuilt={})
    loose = replace(base, name="loose", prebuilt={})
    matcher = Matcher([tight, loose], {"pdq": 31})
    batch = [_pdq_signals((_flip(entry, d), "x")) for d in (3, 10, 20, 35, 45)]
    matches, near = matcher.match_with_near(batch, {"pdq": 8})
    found = [{m.list_name: m.distance for m in ms} for ms in matches]
    assert found == [{"tight": 3, "loose": 3}, {"loose": 10}, {"loose": 20}, {}, {}]
    # 10 is within tight's 4 + 8; 35 within loose's 31 + 8; 20 and 45 near no threshold.
    assert near == {1, 3}


def test_an_allow_match_on_one_file_leaves_a_block_match_on_another(tmp_path: Path) -> None:
    from dataclasses import replace

    from safeset.lists import ListSpec, load_list
    from safeset.matching.matcher import Matcher

    entry = bytes(range(32))
    (tmp_path / "l.txt").write_text(f"pdq {entry.hex()}\n")
    base = load_list(ListSpec.parse(str(tmp_path / "l.txt")))
    block = replace(base, name="ncmec", prebuilt={})
    allow = replace(base, name="fp", role="allow", pdq_threshold=0, prebuilt={})
    # The exact entry on one stored file (allowed), a near copy on the sample's other file.
    sample = _pdq_signals((entry, "s.jpg"), (_flip(entry, 6), "s.tar/second.png"))
    (found,) = Matcher([block, allow]).match([sample])
    assert [(m.list_name, m.part) for m in found] == [
        ("ncmec", "s.jpg"),
        ("ncmec", "s.tar/second.png"),
        ("fp", "s.jpg"),
    ]
    decision = Policy().decide(Evidence(matches=found))
    assert decision.action is Action.REMOVE
    assert "hash:ncmec:pdq:d=6" in decision.reasons
    assert "cancelled:hash:ncmec:pdq:d=0" in decision.reasons


def test_lists_info_shows_rules_and_counts_never_entries(job) -> None:
    root, *_ = job
    result = run_cli("lists", "info", str(root / "lists.toml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "list leads: pdq 1" in out and "rules: role block; action review" in out
    assert "list coffee-tight: pdq 1" in out and f"pdq_threshold {TIGHT}" in out
    assert "list fp: pdq 2" in out and "rules: role allow; pdq_threshold 4" in out
    assert "list ncmec: pdq 1, md5 1" in out
    entries = [
        line.split()[1]
        for f in (root / "lists").glob("*.txt")
        for line in f.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(entries) == 6 and not any(e in out for e in entries)
    as_json = json.loads(run_cli("lists", "info", "--json", str(root / "lists" / "fp.txt")).stdout)
    assert as_json[0]["entries"] == {"pdq": 2} and as_json[0]["file"]["bytes"] > 0
    assert not any(e in json.dumps(as_json) for e in entries)


def test_auditor_applies_a_lists_file(examples: ExampleSet, tmp_path: Path) -> None:
    import safeset

    allowed = _record(examples, "rocket/recompressed")
    reviewed = _record(examples, "motorcycle_left/resized")
    originals = {name.split(".")[0]: _jpeg(img) for name, img in examples.known.items()}
    (tmp_path / "block.txt").write_text(f"pdq {_pdq(originals['rocket'])}\n")
    (tmp_path / "leads.txt").write_text(f"pdq {_pdq(originals['motorcycle_left'])}\n")
    (tmp_path / "fp.txt").write_text(f"md5 {hashlib.md5(allowed.data).hexdigest()}\n")
    (tmp_path / "lists.toml").write_text(
        '[lists.block]\nfile = "block.txt"\n'
        '[lists.leads]\nfile = "leads.txt"\naction = "review"\n'
        '[lists.fp]\nfile = "fp.txt"\nrole = "allow"\n'
    )
    auditor = safeset.Auditor(lists=[str(tmp_path / "lists.toml")])
    kept, review, other = auditor.check(
        [allowed.data, reviewed.data, _record(examples, "rocket/blurred").data]
    )
    assert kept.action == "keep" and "allowed:fp:entry 1" in kept.reasons
    assert review.action == "review"
    assert other.action == "remove"  # the allow entry is that one file's md5, not the photo's
