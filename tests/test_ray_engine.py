"""The Ray engine gives the local engine's results, and the two resume each other's scans.

Ray takes seconds to start, so only the tests marked ``ray`` start it (twice in all); they skip
when ray is not installed. The others check what needs no Ray at all.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safeset.api import scan
from safeset.engines import LocalEngine, engine_named
from safeset.engines.ray import RayEngine, check_reachable
from safeset.errors import SafesetError
from safeset.examples import TRANSFORMS, ExampleSet, write_webdataset
from safeset.formats import open_source
from safeset.lists import ListSpec, load_list
from safeset.matching.matcher import Matcher
from safeset.pipeline import Scanner, ScanOptions
from safeset.store import ScanDir

from .support import assert_same_scan, run_cli
from .urlserver import closed_port_url, serving


@pytest.fixture(scope="module")
def dataset(examples: ExampleSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_webdataset(examples, tmp_path_factory.mktemp("wds") / "data", per_shard=10)


@pytest.mark.ray
def test_ray_engine_matches_local_engine_and_resumes_its_scans(
    dataset: Path, examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    """One Ray start (they are slow) for three checks, through the CLI as a user runs it:

    - a tar dataset scanned wholly by Ray gives the local engine's rows, manifest and summary;
    - a URL table half scanned by the local engine is finished by Ray, identically: the engine
      is not part of the job, and Ray's workers download from the test's server themselves;
    - only ``summary["run"]`` tells the runs apart.
    """
    pytest.importorskip("ray")
    images = {f"{r.key}.{r.ext}": r.data for r in examples.records[:40]}
    with serving(images) as server:
        table = tmp_path / "data" / "urls.parquet"
        table.parent.mkdir()
        urls = [server.url(f"/img/{name}") for name in images] + [server.url("/missing")]
        pq.write_table(pa.table({"url": urls}), table, row_group_size=12)
        sources = [str(dataset), str(table)]

        reference = tmp_path / "local"
        scan(sources, [known_list], reference, engine=LocalEngine(2), progress=False)
        resumed = tmp_path / "resumed"
        shutil.copytree(reference, resumed)
        url_shards = [s for s in ScanDir(resumed).shard_ids() if s.startswith("s001-")]
        kept = url_shards[::2]
        for shard_id in set(ScanDir(resumed).shard_ids()) - set(kept):
            ScanDir(resumed).shard_file(shard_id).unlink()
        (resumed / "manifest.csv").unlink()
        (resumed / "summary.json").unlink()

        done = run_cli(
            "scan", *sources, "--list", str(known_list), "--out", str(resumed),
            "--engine", "ray", "--workers", "2", "--quiet",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    assert_same_scan(reference, resumed)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["run"]["engine"] == "ray"
    assert summary["run"]["shards_resumed"] == len(kept) >= 1
    assert summary["shards"] - len(kept) > len(list(dataset.glob("*.tar"))) > 2
    # Hidden copies found without --dihedral: all but the rotated ones, in tars and by URL.
    found = {r.key for r in examples.records if r.hidden and r.hidden.split("/")[1] in TRANSFORMS}
    by_url = found & {r.key for r in examples.records[:40]}
    assert summary["actions"]["remove"] == len(found) + len(by_url)
    assert summary["errors_by_kind"] == {"http 404": 1}


def test_engine_is_not_part_of_the_job(dataset: Path, known_list: Path, tmp_path: Path) -> None:
    one_tar = str(sorted(dataset.glob("*.tar"))[0])
    scan([one_tar], [known_list], tmp_path / "s", progress=False)
    job = json.loads((tmp_path / "s" / "job.json").read_text())
    assert set(job) == {"sources", "lists", "options"}
    assert "engine" not in job["options"]


def test_the_scanner_survives_pickling(
    examples: ExampleSet, known_list: Path, dataset: Path
) -> None:
    # Ray ships the scanner through its object store: it must pickle, and match the same after.
    scanner = Scanner(Matcher([load_list(ListSpec.parse(str(known_list)))]), ScanOptions())
    shard = open_source(str(dataset)).shards("s000")[0]
    copied = pickle.loads(pickle.dumps(scanner)).scan_shard(shard)
    assert copied.equals(scanner.scan_shard(shard))
    assert "remove" in copied.column("action").to_pylist()  # the copy does match


def test_missing_ray_is_one_clear_error(
    dataset: Path, known_list: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(SafesetError, match=r"--engine ray needs Ray: pip install 'safeset\[ray\]'"):
        scan([dataset], [known_list], tmp_path / "s", engine=RayEngine(2), progress=False)
    assert not (tmp_path / "s").exists()  # refused before any work


def test_ray_address_without_ray_engine_is_refused(
    dataset: Path, known_list: Path, tmp_path: Path
) -> None:
    with pytest.raises(SafesetError, match=r"^--ray-address is for --engine ray$"):
        engine_named("local", workers=2, address="auto")


def test_an_unreachable_ray_address_fails_fast() -> None:
    # Ray itself retries an absent cluster for minutes; safeset says so in seconds.
    address = closed_port_url().removeprefix("http://").split("/")[0]
    with pytest.raises(SafesetError, match=f"cannot reach the Ray cluster at {address}: "):
        check_reachable(address)
    with pytest.raises(SafesetError, match="cannot reach"):
        check_reachable(f"ray://{address}")
    check_reachable("auto")  # left for Ray to resolve
