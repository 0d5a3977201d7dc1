"""Shared fixtures: a tiny multi-operator dataset made by the project's own generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.registry import dataset_spec


@pytest.fixture(scope="session")
def tiny_push_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo per operator of ``polymimic/push/multi-operator-v0`` (6 demos)."""
    path = tmp_path_factory.mktemp("data") / "push_tiny.hdf5"
    spec = dataset_spec("polymimic/push/multi-operator-v0")
    return generate_dataset(spec, path, demos_per_operator=1)
