"""Jobs interrupted, run twice at once, over-asked or given colliding sources: each resumes,
finishes, or refuses in one line, and never leaves processes or half-written files behind."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from safeset import lock
from safeset.engines import local
from safeset.examples import ExampleSet, write_webdataset

from . import hostile
from .support import all_rows, assert_same_scan, run_cli, scan_cli


def safeset_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "safeset", *map(str, args)]


def scan_command(data: Path, known: Path, out: Path, workers: int = 2) -> list[str]:
    return safeset_command(
        "scan", data, "--list", known, "--out", out, "--workers", workers, "--quiet"
    )


@pytest.fixture(scope="module")
def dataset(examples: ExampleSet, known_list: Path, tmp_path_factory: pytest.TempPathFactory):
    """One sample per shard (95 shards), scanned once: the reference every rerun must match."""
    root = tmp_path_factory.mktemp("jobs")
    data = write_webdataset(examples, root / "data", per_shard=1)
    reference = root / "reference"
    done = subprocess.run(scan_command(data, known_list, reference), capture_output=True)
    assert done.returncode == 0, done.stderr
    return data, reference


def start_and_signal_when(command: list[str], ready, sig: int, *, group: bool) -> int:
    """Start ``command``; once ``ready()`` send ``sig`` (to its process group if ``group``, as
    a terminal's Ctrl-C does); its exit status."""
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    try:
        while not ready(process):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            if group:
                os.killpg(process.pid, sig)
            else:
                os.kill(process.pid, sig)
        process.wait(timeout=60)
        process.stderr.close()
    return process.returncode


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cleaned(dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What one uninterrupted clean of the dataset writes."""
    data, scan_dir = dataset
    reference = tmp_path_factory.mktemp("cleaned") / "clean"
    assert run_cli("clean", data, "--scan", scan_dir, "--out", reference, "-q").returncode == 0
    return _files(reference)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_clean_is_finished_by_the_same_command(
    dataset, cleaned: dict[str, bytes], tmp_path: Path, sig: int
) -> None:
    data, scan_dir = dataset
    out = tmp_path / "clean"
    command = safeset_command("clean", data, "--scan", scan_dir, "--out", out, "-q")

    def some_written(_) -> bool:
        return len(list(out.glob("*.tar"))) >= 3

    returncode = start_and_signal_when(command, some_written, sig, group=True)
    assert returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    assert 3 <= len(list(out.glob("*.tar"))) < len(list(data.glob("*.tar"))), "killed too late"
    if sig == signal.SIGKILL:
        # Another clean may not write into it (nor may a scan of the cleaned copy mistake it).
        other = run_cli("clean", data, "--scan", scan_dir, "--out", out, "--keep-review", "-q")
        assert other.returncode == 2
        assert "holds an interrupted clean of another scan, sources or --keep-review" in (
            other.stderr
        )

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert _files(out) == cleaned  # nothing of safeset's own left in it
    again = run_cli("clean", data, "--scan", scan_dir, "--out", out, "-q")
    assert again.returncode == 2 and "is not empty" in again.stderr  # a finished one stays


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # a thread that ended after the listing
            continue
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigterm_during_a_scan_ends_its_workers(dataset, known_list: Path, tmp_path: Path) -> None:
    data, reference = dataset
    out = tmp_path / "scan"
    workers: list[int] = []

    def working(process) -> bool:
        workers[:] = _children(process.pid)
        return len(workers) >= 2 and len(list((out / "results").glob("*.parquet"))) >= 1

    # SIGTERM to the scan alone (as a scheduler or `kill` sends it), not to its workers.
    returncode = start_and_signal_when(
        scan_command(data, known_list, out), working, signal.SIGTERM, group=False
    )
    assert returncode == 130
    deadline = time.monotonic() + 30
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _running(pid)], "workers outlived the scan"
    rerun = subprocess.run(scan_command(data, known_list, out), capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_scan(reference, out)


def test_a_scan_into_a_folder_another_scan_is_writing_is_refused(
    known_list: Path, tmp_path: Path
) -> None:
    data = tmp_path / "imgs"
    data.mkdir()
    hostile.photo().save(data / "a.png")
    out = tmp_path / "scan"
    with lock.exclusive(out, "safeset scan"):  # as a running scan holds it
        refused = run_cli("scan", data, "--list", known_list, "--out", out, "-q")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"safeset: error: another safeset scan (pid {os.getpid()}) is writing to {out}; wait "
        "for it to finish or choose another folder"
    )
    # The lock file a dead scan left (with its pid) is no obstacle: the kernel dropped the lock.
    (out / lock.LOCK_NAME).write_text("999999999\n")
    assert [r["key"] for r in scan_cli(out, data, known_list)] == ["a.png"]


def test_two_identical_scans_at_once_end_in_one_complete_scan(
    dataset, known_list: Path, tmp_path: Path
) -> None:
    data, reference = dataset
    out = tmp_path / "scan"
    both = [
        subprocess.Popen(
            scan_command(data, known_list, out, workers=1),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    for p in both:
        p.stderr.close()
    for code, err in outcomes:  # finished, or refused in one line while the other ran
        assert code == 0 or (code == 2 and "another safeset scan (pid" in err), err
        assert "Traceback" not in err
    assert 0 in [code for code, _ in outcomes]
    assert_same_scan(reference, out)


def _lower_open_files(limit: int):
    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return apply


def test_workers_beyond_what_makes_sense_are_capped(tmp_path: Path, known_list: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    png = io.BytesIO()
    hostile.photo((32, 32)).save(png, "PNG")
    for n in range(12):
        with tarfile.open(shards / f"{n:05d}.tar", "w") as tf:
            info = tarfile.TarInfo(f"s{n:03d}.png")
            info.size = len(png.getvalue())
            tf.addfile(info, io.BytesIO(png.getvalue()))
    out = tmp_path / "scan"
    result = subprocess.run(
        scan_command(shards, known_list, out, workers=1000),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_lower_open_files(1024),
    )
    assert result.returncode == 0, result.stderr
    cap, _ = local.worker_cap()
    assert f"safeset: --workers 1000 capped at {cap}: " in result.stderr
    assert len(all_rows(out)) == 12


def test_the_worker_cap_follows_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(512)))
    assert local.worker_cap() == (240, "the open-file limit of 1024 (ulimit -n)")
    engine = local.LocalEngine(1000)
    assert engine.workers == 240
    assert engine.note == "--workers 1000 capped at 240: the open-file limit of 1024 (ulimit -n)"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert local.worker_cap() == (8, "4 per CPU core (2 here)")
    assert local.LocalEngine(8).note is None


def test_sources_holding_the_same_file_names_are_cleaned_side_by_side(
    tmp_path: Path, known_list: Path
) -> None:
    jpg = io.BytesIO()
    hostile.photo().save(jpg, "JPEG")
    members = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        members[name] = [(f"{name}1.jpg", jpg.getvalue()), (f"{name}1.txt", name.encode())]
        with tarfile.open(tmp_path / name / "00000.tar", "w") as tf:
            for member, data in members[name]:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    scan_dir = tmp_path / "scan"
    result = run_cli(
        "scan", tmp_path / "a", tmp_path / "b", "--list", known_list, "--out", scan_dir, "-q"
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "clean"
    result = run_cli(
        "clean", tmp_path / "a", tmp_path / "b", "--scan", scan_dir, "--out", out, "-q"
    )
    assert result.returncode == 0, result.stderr
    assert f"each went into its own folder under {out}: a, b" in result.stdout
    for name in ("a", "b"):
        with tarfile.open(out / name / "00000.tar") as tf:
            assert [(m.name, tf.extractfile(m).read()) for m in tf] == members[name]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a/00000.tar",
        "b/00000.tar",
    ]
    # One SOURCE (a glob) holding both: refused before any work, with what to do instead.
    glob = run_cli(
        "scan", tmp_path / "*" / "00000.tar", "--list", known_list, "--out", tmp_path / "g"
    )
    assert glob.returncode == 2
    assert glob.stderr.startswith("safeset: error: one SOURCE holds several files named 00000.tar")
    assert "pass their folders as separate SOURCE arguments" in glob.stderr
    assert not (tmp_path / "g").exists()


def test_images_sharing_a_caption_are_cleaned_with_it(tmp_path: Path, known_list: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    files = {"p.jpg": b"", "p.png": b"", "p.txt": b"one caption for both"}
    for name, fmt in (("p.jpg", "JPEG"), ("p.png", "PNG")):
        buf = io.BytesIO()
        hostile.photo().save(buf, fmt)
        files[name] = buf.getvalue()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    rows = scan_cli(tmp_path / "scan", folder, known_list)
    assert sorted(r["key"] for r in rows) == ["p.jpg", "p.png"]
    assert all(r["parts"][0]["name"] == "p.txt" for r in rows)
    out = tmp_path / "clean"
    result = run_cli("clean", folder, "--scan", tmp_path / "scan", "--out", out, "-q")
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
