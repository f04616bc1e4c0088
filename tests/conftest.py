"""Shared test data: benign stand-in datasets built once per session (see safeset.examples)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from safeset.examples import ExampleSet, build_examples, write_known_list

# ../shared beside the checkout (absent in some environments: tests using it skip).
SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance" / "pdq"


@pytest.fixture(scope="session")
def examples() -> ExampleSet:
    return build_examples(distractors=30, dihedral=True, seed=1)


@pytest.fixture(scope="session")
def known_list(examples: ExampleSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lists") / "known.txt"
    write_known_list(examples, path)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m safeset`` as a user would, capturing both streams."""
    return subprocess.run(
        [sys.executable, "-m", "safeset", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ray: starts a Ray instance (slow); skipped when ray is not installed"
    )
