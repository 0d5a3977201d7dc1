"""Shared fixtures: a tiny multi-operator dataset made by the project's own generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_files import write_demo_file as write_demo_file_function
from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.registry import dataset_spec


@pytest.fixture(scope="session")
def tiny_push_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo per operator of ``polymimic/push/multi-operator-v1`` (6 demos)."""
    path = tmp_path_factory.mktemp("data") / "push_tiny.hdf5"
    spec = dataset_spec("polymimic/push/multi-operator-v1")
    return generate_dataset(spec, path, demos_per_operator=1)


@pytest.fixture
def write_demo_file():
    """``demo_files.write_demo_file``: hand-made demos in a complete polymimic file."""
    return write_demo_file_function
