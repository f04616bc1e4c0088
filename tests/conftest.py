"""Shared test data: benign stand-in datasets built once per session (see safeset.examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeset.examples import ExampleSet, build_examples, write_known_list


@pytest.fixture(scope="session")
def examples() -> ExampleSet:
    return build_examples(distractors=30, dihedral=True, seed=1)


@pytest.fixture(scope="session")
def known_list(examples: ExampleSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lists") / "known.txt"
    write_known_list(examples, path)
    return path


@pytest.fixture(params=["compiled", "numpy"])
def compiled_loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The compiled loops (the PDQ index's probe loop, the fast PDQ's resample and quality),
    then numpy alone: both must give the same answers (modules opt in with
    ``pytest.mark.usefixtures``)."""
    from safeset.matching import pdq_index
    from safeset.signals import pdq_fast

    if request.param == "numpy":
        monkeypatch.setattr(pdq_index, "_mih", None)
        monkeypatch.setattr(pdq_fast, "_compiled", None)
    elif pdq_index._mih is None or pdq_fast._compiled is None:
        pytest.skip("the compiled loops were not built here (no C compiler)")
    return request.param


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ray: starts a Ray instance (slow); skipped when ray is not installed"
    )
