"""Fixtures of the compatibility tests: one torch thread, a tiny benchmark file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from polymimic.compat.groundtruth import compat_benchmark_spec
from polymimic.datasets.generate import generate_dataset


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny MLPs only lose time to intra-op threading, badly so on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def benchmark_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Push's compat benchmark at d = 1, 3 demos per operator (12 demos, ~5 s)."""
    path = tmp_path_factory.mktemp("compat") / "push_compat_d1.hdf5"
    return generate_dataset(compat_benchmark_spec("push", 1.0), path, demos_per_operator=3)


@pytest.fixture
def benchmark_copy(benchmark_file: Path, tmp_path: Path) -> Path:
    """A private copy of the benchmark file (tests write scorings into it)."""
    return Path(shutil.copy(benchmark_file, tmp_path / "scored.hdf5"))
