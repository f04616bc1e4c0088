"""Hash-list dialects load as users receive them; malformed lists fail on one clear line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeset.errors import SafesetError
from safeset.lists import ListSpec, load_list
from safeset.signals.cryptographic import MD5
from safeset.signals.pdq import PDQ

rng = random.Random(7)


def _hex(nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def _write(tmp_path: Path, text: str, name: str = "list.txt", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_threatexchange_csv_as_the_cli_writes_it(tmp_path: Path) -> None:
    # Exactly the shape of `threatexchange dataset -P --csv`: DictWriter header, then rows.
    pdq, md5 = _hex(32), _hex(16)
    text = (
        "collab,signal_type,signal_str,category,tags\r\n"
        f"Sample Data,pdq,{pdq},TRUE_POSITIVE,tag1 tag2\r\n"
        f"Sample Data,video_md5,{_hex(16)},TRUE_POSITIVE,\r\n"
        f"Sample Data,pdq,{_hex(32)},FALSE_POSITIVE,\r\n"
        f"Other,photo_md5,{md5},WORTH_INVESTIGATING,\r\n"
    )
    hl = load_list(ListSpec.parse(str(_write(tmp_path, text, "collab.csv"))))
    assert hl.name == "collab"
    assert hl.counts() == {"pdq": 1, "md5": 1}
    assert hl.values["pdq"][0].tobytes().hex() == pdq
    assert hl.values["md5"][0].tobytes().hex() == md5
    assert hl.lines["pdq"].tolist() == [2] and hl.lines["md5"].tolist() == [5]
    assert hl.skipped == {"unsupported type video_md5": 1, "marked false positive": 1}


def test_headerless_csv_in_documented_column_order(tmp_path: Path) -> None:
    text = f"pdq,{_hex(32)},collab,TRUE_POSITIVE,a\nmd5,{_hex(16)}\n"
    assert load_list(ListSpec.parse(str(_write(tmp_path, text)))).counts() == {"pdq": 1, "md5": 1}


def test_file_exchange_lines_with_bom_crlf_comments_and_uppercase(tmp_path: Path) -> None:
    pdq = _hex(32)
    text = (
        f"# exported list\r\n\r\npdq {pdq.upper()}\r\n"
        f"SHA256 {_hex(32)}\r\n  \r\nsha1 {_hex(20)}\r\n"
    )
    hl = load_list(ListSpec.parse(str(_write(tmp_path, text, encoding="utf-8-sig"))))
    assert hl.counts() == {"pdq": 1, "sha256": 1, "sha1": 1}
    assert hl.values["pdq"][0].tobytes().hex() == pdq
    assert hl.lines["pdq"].tolist() == [3]


def test_bare_hashes_with_declared_type_and_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join(_hex(16) for _ in range(5)) + "\n")
    spec = ListSpec.parse(f"ncmec=md5:{path}")
    assert (spec.name, spec.declared) == ("ncmec", MD5)
    assert load_list(spec).counts() == {"md5": 5}


def test_list_spec_forms() -> None:
    assert ListSpec.parse("lists/iwf.csv") == ListSpec(Path("lists/iwf.csv"), "iwf", None)
    assert ListSpec.parse("pdq:a/b.txt") == ListSpec(Path("a/b.txt"), "b", PDQ)
    # A colon that is not a known type belongs to the path.
    assert ListSpec.parse("odd:name.txt").path == Path("odd:name.txt")


def test_duplicates_are_kept_as_separate_lines(tmp_path: Path) -> None:
    h = _hex(32)
    hl = load_list(ListSpec.parse(str(_write(tmp_path, f"pdq {h}\npdq {h}\n"))))
    assert hl.counts() == {"pdq": 2}


NOT_A_TYPE = "the type field holds no signal type name"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"pdq {'ab' * 31}\n", "list.txt:1: pdq hash must be 64 hex digits, got 62 characters"),
        (f"pdq {_hex(32)}\nmd5 {'zz' * 16}\n", "list.txt:2: md5 hash has non-hex characters"),
        (f"pdq {_hex(32)}\npdq {_hex(32)} {_hex(32)}\n", "list.txt:2: expected 'TYPE HASH'"),
        (f"{_hex(32)}\n", "list.txt:1: one hash a line needs its type"),
        ("# nothing here\n\n", "has no usable hashes"),
        (f"video_md5 {_hex(16)}\n", "has no usable hashes (1 entries of unsupported types)"),
        (f"pdq,{_hex(32)}\npdq\n", "list.txt:2: expected at least 2 comma-separated fields"),
        ("pdq \xff\xfe\n", "list.txt:1: not UTF-8 text"),
        # A hash where the type should be is list content: never echoed, whatever its form.
        (f"{_hex(16)}  photos/a.jpg\n", f"list.txt:1: {NOT_A_TYPE}"),  # md5sum output
        (f"{_hex(16)},csam\n", f"list.txt:1: {NOT_A_TYPE}"),
        (f"{_hex(16)} md5\n", f"list.txt:1: {NOT_A_TYPE}"),
        (f"pdq {_hex(32)}\nPDQhashAbC12== {_hex(32)}\n", f"list.txt:2: {NOT_A_TYPE}"),
    ],
)
def test_malformed_lists_name_file_and_line_without_echoing(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    with pytest.raises(SafesetError) as err:
        load_list(ListSpec.parse(str(path)))
    message = str(err.value)
    assert expected in message
    for token in text.replace(",", " ").split():
        if token not in ("pdq", "md5", "csam", "whirlpool") and not token.startswith("photos"):
            assert token.lower() not in message.lower()  # any value from the file


def test_md5sum_output_loads_with_its_type_given(tmp_path: Path) -> None:
    digests = [_hex(16) for _ in range(3)]
    path = _write(tmp_path, "".join(f"{d}  photos/{n}.jpg\n" for n, d in enumerate(digests)))
    hl = load_list(ListSpec.parse(f"md5:{path}"))
    assert [bytes(v).hex() for v in hl.values["md5"]] == digests


def test_missing_list_file(tmp_path: Path) -> None:
    with pytest.raises(SafesetError, match="hash list not found"):
        load_list(ListSpec.parse(str(tmp_path / "nope.txt")))


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["pdq", "md5", "sha1", "sha256"]), st.binary(min_size=32, max_size=32)
        ),
        min_size=1,
        max_size=30,
    ),
    crlf=st.booleans(),
    upper=st.booleans(),
    comment_every=st.integers(min_value=0, max_value=5),
)
def test_any_valid_file_exchange_list_round_trips(
    tmp_path_factory: pytest.TempPathFactory, entries, crlf: bool, upper: bool, comment_every: int
) -> None:
    widths = {"pdq": 32, "md5": 16, "sha1": 20, "sha256": 32}
    lines, expected = [], {}
    for n, (kind, raw) in enumerate(entries):
        if comment_every and n % comment_every == 0:
            lines.append("# comment")
        value = raw[: widths[kind]].hex()
        lines.append(f"{kind} {value.upper() if upper else value}")
        expected.setdefault(kind, []).append(value)
    path = tmp_path_factory.mktemp("prop") / "l.txt"
    path.write_text(("\r\n" if crlf else "\n").join(lines))
    hl = load_list(ListSpec.parse(str(path)))
    got = {k: [row.tobytes().hex() for row in v] for k, v in hl.values.items()}
    assert got == expected


def test_saved_list_loads_to_the_same_matches_and_job(tmp_path: Path) -> None:
    from safeset.lists.saved import load_saved_list
    from safeset.matching.matcher import Matcher

    from .support import run_cli
    from .test_matching import _signals

    pdqs = [rng.randbytes(32) for _ in range(50)]
    md5 = rng.randbytes(16)
    text = "".join(f"pdq {h.hex()}\n" for h in pdqs) + f"video_md5 {_hex(16)}\nmd5 {md5.hex()}\n"
    source = _write(tmp_path, text, "iwf.txt")
    result = run_cli("lists", "build", str(source), "--out", str(tmp_path / "iwf"))
    assert result.returncode == 0, result.stderr
    assert "pdq 50, md5 1" in result.stdout
    assert not any(h.hex() in result.stdout + result.stderr for h in pdqs)
    saved = load_list(ListSpec.parse(str(tmp_path / "iwf")))
    original = load_list(ListSpec.parse(str(source)))
    assert saved.name == original.name == "iwf"
    assert saved.fingerprint == original.fingerprint and saved.skipped == original.skipped
    probe = [
        _signals(md5=[md5], pdq=[pdqs[7]]),
        _signals(pdq=[rng.randbytes(32)]),
    ]
    assert Matcher([saved]).match(probe) == Matcher([original]).match(probe)
    again = run_cli("lists", "build", str(source), "--out", str(tmp_path / "iwf"))
    assert again.returncode == 2 and "exists" in again.stderr
    (tmp_path / "iwf" / "pdq.index").write_bytes(b"garbage")
    with pytest.raises(SafesetError, match="damaged saved list"):
        load_saved_list(tmp_path / "iwf", "iwf")
