"""Tests for polymimic.io: atomic writes and the recorded library versions."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polymimic.io import atomic_write, atomic_write_json, library_versions, write_mp4


def test_atomic_write_replaces_file_via_temp_in_same_directory(tmp_path):
    path = tmp_path / "sub" / "video.mp4"
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.exists() and not path.exists()  # nothing under the final name yet
        tmp.write_bytes(b"new")

    assert atomic_write(path, write) == path
    assert path.read_bytes() == b"new"
    (tmp,) = seen
    assert tmp.parent == path.parent and tmp != path
    assert tmp.suffix == ".mp4"  # writers such as imageio pick the format from the suffix
    assert sorted(p.name for p in path.parent.iterdir()) == ["video.mp4"]


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")

    def write_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half-written")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(path, write_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_failure_without_old_file_leaves_nothing(tmp_path):
    def fail(tmp: Path) -> None:
        raise KeyboardInterrupt  # BaseException too: the temp must not survive an interrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "data.bin", fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_json_default_and_unserialisable(tmp_path):
    path = tmp_path / "info.json"
    atomic_write_json(path, {"a": np.float32(0.5)}, default=lambda v: v.item())
    assert path.read_text() == json.dumps({"a": 0.5}, indent=2) + "\n"
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"a": math.nan}, allow_nan=False)
    assert json.loads(path.read_text()) == {"a": 0.5}  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["info.json"]


def test_library_versions_keys_and_values():
    versions = library_versions()
    assert set(versions) == {
        "python", "numpy", "numba", "torch", "mujoco", "gymnasium", "h5py", "polymimic",
        "platform", "machine",
    }  # fmt: skip
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    assert versions["machine"] == platform.machine()
    assert all(v is None or isinstance(v, str) for v in versions.values())
    json.dumps(versions)  # recorded in JSON documents and HDF5 attrs


def test_polymimic_io_does_not_import_torch():
    code = (
        "import sys, polymimic.io; polymimic.io.library_versions(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_atomic_write_gives_the_permissions_of_a_plain_file(tmp_path) -> None:
    """mkstemp's private 0600 must not leak into users' datasets and results."""
    import os
    import stat

    from polymimic.io import atomic_write_json

    old_umask = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "new.json", {"a": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)  # a user's own choice is kept on rewrite
        atomic_write_json(path, {"a": 2})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_write_mp4_without_ffmpeg_backend_is_one_clear_error(tmp_path, monkeypatch):
    # sys.modules[name] = None makes `import name` raise ImportError, as on a machine
    # without imageio-ffmpeg (imageio would otherwise pick its TIFF writer for the suffix).
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    frames = [np.zeros((8, 8, 3), np.uint8)]
    with pytest.raises(RuntimeError, match="needs imageio and imageio-ffmpeg"):
        write_mp4(tmp_path / "v.mp4", frames, fps=10)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_write_mp4_streams_frames_and_keeps_the_size(tmp_path):
    import imageio.v3 as iio

    frames = (np.full((34, 46, 3), 40 * i, np.uint8) for i in range(5))  # a generator
    assert write_mp4(tmp_path / "v.mp4", frames, fps=10) == 5
    video = iio.imread(tmp_path / "v.mp4")
    assert video.shape == (5, 34, 46, 3)
    assert video[4].mean() > video[1].mean() + 60
