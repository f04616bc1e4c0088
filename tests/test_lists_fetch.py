"""``safeset lists fetch`` through python-threatexchange's local-file exchange, and credentials.

NCMEC, StopNCII and ThreatExchange cannot be reached from the tests; their credential handling
is tested here, their fetches are not.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from safeset.errors import SafesetError
from safeset.examples import ExampleSet, _jpeg, write_folder
from safeset.signals.image import image_facts

from .support import run_cli

pytest.importorskip("threatexchange")


@pytest.fixture(scope="module")
def known(examples: ExampleSet) -> dict[str, str]:
    return {
        name.split(".")[0]: image_facts(_jpeg(img)).pdq.hex for name, img in examples.known.items()
    }


def _modes(folder: Path) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def _no_entry(text: str, values) -> None:
    for value in values:
        assert value not in text.lower()


def test_fetch_local_file_end_to_end_and_incrementally(
    examples: ExampleSet, known: dict[str, str], tmp_path: Path
) -> None:
    signals = tmp_path / "signals.txt"
    bad_pdq = "ab" * 31  # a malformed entry of a usable type: left out, counted, never echoed
    signals.write_text(
        f"pdq {known['astronaut']}\nvideo_md5 {'12' * 16}\nurl https://example.org/x\n"
        f"pdq {bad_pdq}\n"
    )
    out = tmp_path / "lists" / "fromfile"
    first = run_cli("lists", "fetch", "local_file", "--file", str(signals), "--out", str(out), "-q")
    assert first.returncode == 0, first.stderr
    assert "(first fetch)" in first.stdout and "pdq 1" in first.stdout
    assert "malformed pdq value (1)" in first.stdout
    assert "unsupported type video_md5 (1)" in first.stdout
    _no_entry(first.stdout + first.stderr, [known["astronaut"], bad_pdq, "12" * 16])
    # Everything written is its owner's only.
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert _modes(out) == {0o600}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["fetched"]["exchange"] == "local_file" and meta["fetched"]["fetches"] == 1

    info = run_cli("lists", "info", str(out))
    assert info.returncode == 0, info.stderr
    assert "list fromfile: pdq 1" in info.stdout
    assert f"sha256: {meta['sha256']}" in info.stdout
    assert "fetched from local_file" in info.stdout
    assert "unsupported type url (1)" in info.stdout
    _no_entry(info.stdout, [known["astronaut"], bad_pdq])

    # The fetched list scans like any saved list.
    source = write_folder(examples, tmp_path / "data")
    scan = run_cli("scan", str(source), "--list", str(out), "--out", str(tmp_path / "scan"), "-q")
    assert scan.returncode == 0, scan.stderr
    summary = json.loads((tmp_path / "scan" / "summary.json").read_text())
    assert summary["matches"]["fromfile"]["pdq"] >= 4

    # The programme adds an entry: a rerun updates the list in place.
    with signals.open("a") as f:
        f.write(f"pdq {known['chelsea']}\n")
    second = run_cli(
        "lists", "fetch", "local_file", "--file", str(signals), "--out", str(out), "-q"
    )
    assert second.returncode == 0, second.stderr
    assert "(incremental fetch)" in second.stdout and "1 new, 0 removed" in second.stdout
    assert "list updated: pdq 2" in second.stdout
    meta2 = json.loads((out / "meta.json").read_text())
    assert meta2["sha256"] != meta["sha256"]
    assert meta2["fetched"]["fetches"] == 2
    assert meta2["fetched"]["first_fetched_at"] == meta["fetched"]["first_fetched_at"]
    assert _modes(out) == {0o600}
    assert not list(tmp_path.joinpath("lists").glob(".*"))  # no staging folder left behind

    # Nothing changed: the saved list stands as it is.
    third = run_cli("lists", "fetch", "local_file", "--file", str(signals), "--out", str(out), "-q")
    assert third.returncode == 0, third.stderr
    assert "0 new, 0 removed; list unchanged: pdq 2" in third.stdout
    assert json.loads((out / "meta.json").read_text())["sha256"] == meta2["sha256"]


def test_rerun_hands_the_stored_checkpoint_back(
    known: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threatexchange.exchanges.fetch_state import FetchCheckpointBase
    from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI

    from safeset.lists.exchange import FetchRequest, run_fetch

    seen = []
    original = LocalFileSignalExchangeAPI.fetch_iter

    def spy(self, types, checkpoint):
        seen.append(checkpoint)
        return original(self, types, checkpoint)

    monkeypatch.setattr(LocalFileSignalExchangeAPI, "fetch_iter", spy)
    signals = tmp_path / "s.txt"
    signals.write_text(f"pdq {known['coffee']}\n")
    req = FetchRequest("local_file", tmp_path / "l", file=signals, quiet=True)
    assert not run_fetch(req).incremental
    again = run_fetch(req)
    assert again.incremental and again.added == 0 and not again.changed
    assert seen[0] is None and isinstance(seen[1], FetchCheckpointBase)


def test_fetch_refuses_other_folders(known: dict[str, str], tmp_path: Path) -> None:
    signals = tmp_path / "s.txt"
    signals.write_text(f"pdq {known['coffee']}\n")
    other = tmp_path / "other.txt"
    other.write_text(f"pdq {known['rocket']}\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    taken = run_cli(
        "lists", "fetch", "local_file", "--file", str(signals), "-o", str(tmp_path / "taken")
    )
    assert taken.returncode == 2 and "is not a fetched list" in taken.stderr
    out = tmp_path / "l"
    assert (
        run_cli(
            "lists", "fetch", "local_file", "--file", str(signals), "-o", str(out), "-q"
        ).returncode
        == 0
    )
    moved = run_cli("lists", "fetch", "local_file", "--file", str(other), "-o", str(out), "-q")
    assert moved.returncode == 2 and "another exchange or collaboration" in moved.stderr
    missing = run_cli("lists", "fetch", "local_file", "--file", str(tmp_path / "no.txt"), "-o", "x")
    assert missing.returncode == 2 and "signal file not found" in missing.stderr
    nofile = run_cli("lists", "fetch", "local_file", "-o", str(tmp_path / "y"))
    assert nofile.returncode == 2 and "needs --file" in nofile.stderr


# --- credentials --------------------------------------------------------------------------------

SECRET = "s3cret-Pa55"


@pytest.fixture
def no_env_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment without any exchange credentials and with an empty config folder."""
    for name in ("TX_NCMEC_CREDENTIALS", "TX_STOPNCII_KEYS", "TX_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.mkdir()
    return {"XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["ncmec", "--environment", "NGO"], "TX_NCMEC_CREDENTIALS=user:password"),
        (["stop_ncii"], "TX_STOPNCII_KEYS="),
        (["fb_threatexchange", "--privacy-group", "1"], "TX_ACCESS_TOKEN="),
    ],
)
def test_missing_credentials_are_one_line(no_env_credentials, tmp_path: Path, args, hint) -> None:
    result = run_cli("lists", "fetch", *args, "-o", str(tmp_path / "l"), env=no_env_credentials)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no credentials for" in lines[0] and hint in lines[0]
    assert not (tmp_path / "l").exists()


def test_world_readable_credentials_file_is_refused(no_env_credentials, tmp_path: Path) -> None:
    creds = tmp_path / "creds.toml"
    creds.write_text(f'[ncmec]\nuser = "me"\npassword = "{SECRET}"\n')
    creds.chmod(0o644)
    args = ["lists", "fetch", "ncmec", "--environment", "NGO", "--credentials", str(creds)]
    result = run_cli(*args, "-o", str(tmp_path / "l"), env=no_env_credentials)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is readable by others (mode 0644); chmod 600" in lines[0]
    assert SECRET not in result.stdout + result.stderr
    # The default file is held to the same rule.
    default = Path(no_env_credentials["XDG_CONFIG_HOME"]) / "safeset" / "credentials.toml"
    default.parent.mkdir()
    default.write_text(creds.read_text())
    default.chmod(0o640)
    result = run_cli(
        "lists", "fetch", "stop_ncii", "-o", str(tmp_path / "l"), env=no_env_credentials
    )
    assert result.returncode == 2 and "readable by others (mode 0640)" in result.stderr


def test_credentials_from_file_and_environment(
    no_env_credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safeset.lists.credentials import load_credentials

    creds = tmp_path / "creds.toml"
    creds.write_text(
        f'[ncmec]\nuser = "me"\npassword = "{SECRET}"\n'
        '[stop_ncii]\nfetch_function_key = "f"\nsubscription_key = "s"\n'
    )
    creds.chmod(0o600)
    ncmec = load_credentials("ncmec", creds)
    assert (ncmec.user, ncmec.password) == ("me", SECRET)
    stop = load_credentials("stop_ncii", creds)
    assert (stop.fetch_function_key, stop.subscription_key) == ("f", "s")
    with pytest.raises(SafesetError, match=r"has no \[fb_threatexchange\] table"):
        load_credentials("fb_threatexchange", creds)
    monkeypatch.setenv("TX_NCMEC_CREDENTIALS", f"env-user:{SECRET}")
    assert load_credentials("ncmec", None).user == "env-user"
    monkeypatch.setenv("TX_NCMEC_CREDENTIALS", "no-colon")
    with pytest.raises(SafesetError, match="TX_NCMEC_CREDENTIALS is malformed"):
        load_credentials("ncmec", None)
    assert load_credentials("local_file", None) is None  # needs none
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[ncmec\npassword = "{SECRET}"\n')
    broken.chmod(0o600)
    with pytest.raises(SafesetError) as err:
        load_credentials("ncmec", broken)
    assert "not valid TOML" in str(err.value) and SECRET not in str(err.value)


def test_ncmec_entries_keep_image_md5_and_pdq(known: dict[str, str]) -> None:
    from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryType, NCMECEntryUpdate
    from threatexchange.exchanges.impl.ncmec_api import NCMECCollabConfig

    from safeset.lists.exchange import _rows

    def entry(id_, kind, fingerprints, *, deleted=False, member=7):
        return NCMECEntryUpdate(id_, member, kind, deleted, "A1", fingerprints, {})

    md5 = "0123456789abcdef" * 2
    records = {
        "1": entry("1", NCMECEntryType.image, {"md5": md5, "pdq": known["rocket"], "pdna": "x"}),
        "2": entry("2", NCMECEntryType.video, {"md5": "f" * 32}),
        "3": entry("3", NCMECEntryType.image, {"md5": "e" * 32}, deleted=True),
        "4": entry("4", NCMECEntryType.image, {"md5": "d" * 32}, member=8),
    }
    collab = NCMECCollabConfig(name="ncmec", environment=None, only_esp_ids={7})
    rows, skipped = _rows("ncmec", collab, records)
    assert rows == [
        ["md5", md5, "ncmec", "POSITIVE_CLASS", "A1"],
        ["pdq", known["rocket"], "ncmec", "POSITIVE_CLASS", "A1"],
    ]
    assert skipped == {"unsupported type photodna": 1, "unsupported type video_md5": 1}


def test_fetch_state_round_trips_as_json(known: dict[str, str], tmp_path: Path) -> None:
    """The checkpoint and records are stored as JSON (never a pickle) and come back equal."""
    from threatexchange.exchanges.clients.ncmec.hash_api import (
        Feedback,
        FeedbackType,
        NCMECEntryType,
        NCMECEntryUpdate,
        NCMECEnvironment,
        StatusResult,
    )
    from threatexchange.exchanges.impl.ncmec_api import (
        NCMECCheckpoint,
        NCMECCollabConfig,
        NCMECSignalExchangeAPI,
    )

    from safeset.lists.exchange import _load_state, _state_bytes, _write_private

    collab = NCMECCollabConfig(name="n", environment=NCMECEnvironment.NGO, only_esp_ids={3, 1})
    vote = Feedback(FeedbackType.downvote, StatusResult(7, "esp"), "not csam")
    records = {
        "e1": NCMECEntryUpdate(
            "e1", 3, NCMECEntryType.image, False, "A1", {"pdq": known["rocket"]}, {"pdq": [vote]}
        )
    }
    state = {"exchange": "ncmec", "collab": collab, "checkpoint": NCMECCheckpoint(1700000000)}
    (tmp_path / "l" / "fetch").mkdir(parents=True)
    _write_private(
        tmp_path / "l" / "fetch" / "state.json", _state_bytes(state | {"records": records})
    )
    back = _load_state(tmp_path / "l", "ncmec", collab, NCMECSignalExchangeAPI)
    assert back == {"checkpoint": state["checkpoint"], "records": records}
    other = NCMECCollabConfig(name="n", environment=NCMECEnvironment.Industry)
    with pytest.raises(SafesetError, match="another exchange or collaboration"):
        _load_state(tmp_path / "l", "ncmec", other, NCMECSignalExchangeAPI)


def test_threatexchange_records_go_through_its_own_type_mapping(known: dict[str, str]) -> None:
    from threatexchange.exchanges.fetch_state import SignalOpinionCategory
    from threatexchange.exchanges.impl.fb_threatexchange_api import (
        FBThreatExchangeCollabConfig,
        FBThreatExchangeIndicatorRecord,
        FBThreatExchangeOpinion,
    )

    from safeset.lists.exchange import _rows

    def record(category):
        return FBThreatExchangeIndicatorRecord(
            [FBThreatExchangeOpinion(False, category, set(), 1, 2)]
        )

    records = {
        ("HASH_PDQ", known["rocket"]): record(SignalOpinionCategory.POSITIVE_CLASS),
        ("HASH_PDQ", known["coffee"]): record(SignalOpinionCategory.NEGATIVE_CLASS),
        ("URI", "https://example.org/x"): record(SignalOpinionCategory.POSITIVE_CLASS),
    }
    collab = FBThreatExchangeCollabConfig(name="te", privacy_group=1)
    rows, skipped = _rows("fb_threatexchange", collab, records)
    assert ["pdq", known["rocket"], "te", "POSITIVE_CLASS", ""] in rows
    assert ["pdq", known["coffee"], "te", "NEGATIVE_CLASS", ""] in rows  # the parser skips it
    assert len(rows) == 2 and skipped == {"unsupported type url": 1}
