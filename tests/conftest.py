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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ray: starts a Ray instance (slow); skipped when ray is not installed"
    )
