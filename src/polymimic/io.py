"""Small file-system helpers every output of polymimic uses: atomic writes, library versions.

Datasets, checkpoints, ``eval_info.json`` and videos are all written with :func:`atomic_write`,
so a reader (the leaderboard, a training run resuming, a plotting script) sees either the
old file or the complete new one, never a half-written file, even when the writer is killed.

This module imports only the standard library (and polymimic's error classes): ``torch`` and ``mujoco`` versions are read
from package metadata, without importing them.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from polymimic.errors import OutputPathError

#: Packages whose versions ``library_versions`` records (None when not installed).
VERSIONED_PACKAGES = ("numpy", "numba", "torch", "mujoco", "gymnasium", "h5py", "polymimic")


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[Path], None]) -> Path:
    """Write a file atomically: ``write_fn(tmp)``, fsync, then ``os.replace`` over ``path``.

    The temporary file lies in the same directory as ``path`` (so that ``os.replace`` is an
    atomic rename) and already exists, empty, when ``write_fn`` gets it; it keeps the suffix
    of ``path`` because some writers (imageio) pick the format from it. If ``write_fn`` or the
    rename fails, the temporary file is removed and any previous file at ``path`` is intact.

    Args:
        path: the destination; missing parent directories are created.
        write_fn: writes the complete content to the path it receives.

    Returns:
        ``path`` as a ``Path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_fn(tmp)
        # mkstemp makes the file private (0600); give it the mode the user would get from
        # a plain open() (0666 minus the umask), or keep the mode of the file it replaces.
        os.chmod(tmp, final.stat().st_mode & 0o777 if final.exists() else _default_file_mode())
        fsync(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)  # already gone after a successful replace
    fsync(final.parent)  # makes the rename itself durable
    return final


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Check, before long work starts, that ``path`` can be written as a file.

    Creates missing parent directories (as the writers would) and checks that the parent is a
    writable directory and that ``path`` itself is not a directory.

    Raises:
        OutputPathError: naming the path, the problem and the fix.
    """
    final = Path(path)
    if final.is_dir():
        raise OutputPathError(f"{what} {final} is a directory; give a file path instead")
    _writable_dir(final.parent, f"the directory of {what} {final}")
    return final


def prepare_output_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Create ``path`` as a directory if missing and check that it can be written into.

    Raises:
        OutputPathError: ``path`` is a file, cannot be created or is not writable.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise OutputPathError(f"{what} {directory} is a file; give a directory path instead")
    _writable_dir(directory, what)
    return directory


def _writable_dir(directory: Path, what: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(
            f"{what} {directory} cannot be created: a file is in the way ({_blocking_file(directory)})"
        ) from None
    except OSError as exc:
        raise OutputPathError(
            f"{what} {directory} cannot be created ({exc.strerror}); choose a writable location"
        ) from None
    # A real write: os.access says yes to root even where writes fail (/proc, read-only mounts).
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{what} {directory} is not writable ({exc.strerror}); choose a writable location"
        ) from None


def _blocking_file(path: Path) -> Path:
    """The first ancestor of ``path`` (itself included) that exists but is not a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], busy: Exception) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a directory, or a lock file made if missing).

    The OS releases the lock when the process dies, so a killed job never leaves a stale
    lock behind.

    Raises:
        busy: the exception given, when another process holds the lock.
    """
    target = Path(path)
    flags = os.O_RDONLY if target.is_dir() else os.O_RDWR | os.O_CREAT
    fd = os.open(target, flags, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _default_file_mode() -> int:
    """0666 minus the process umask (read by setting it and putting it straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_json(
    path: str | os.PathLike[str],
    obj: Any,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = True,
) -> Path:
    """Write ``obj`` as indented JSON (with a final newline), atomically.

    The document is serialised before any file is touched, so an unserialisable value
    raises (``TypeError``, or ``ValueError`` for NaN with ``allow_nan=False``) and leaves
    any previous file intact.

    Args:
        path: the destination.
        obj: the JSON document.
        default: as for ``json.dumps``: turns values json cannot encode into ones it can.
        allow_nan: as for ``json.dumps``; False makes NaN/inf an error instead of
            non-standard JSON.

    Returns:
        ``path`` as a ``Path``.
    """
    text = json.dumps(obj, indent=2, default=default, allow_nan=allow_nan) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def fsync(path: str | os.PathLike[str]) -> None:
    """Flush a file (or a directory entry) to disk; some platforms cannot sync directories."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def library_versions() -> dict[str, str | None]:
    """Versions that decide whether a run or dataset reproduces, recorded with every output.

    Simulation is not bit-reproducible across MuJoCo versions or CPU architectures, so the
    same seed gives the same trajectory only when these match. Packages that are not
    installed map to None; none of them is imported to find its version.

    Returns:
        ``python``, one key per entry of ``VERSIONED_PACKAGES``, ``platform`` and ``machine``.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions["platform"] = platform.platform()
    versions["machine"] = platform.machine()
    return versions


def write_mp4(path: str | os.PathLike[str], frames: Iterable[Any], fps: float) -> int:
    """Write RGB frames (H x W x 3 uint8) to an H.264 mp4 as they come, atomically.

    Frames are streamed to the encoder, so a long playback never holds them all in memory.
    The size is kept exactly (``macro_block_size=2``: yuv420p only needs even sides; the
    default 16 would rescale and blur e.g. 84x84 renders).

    Returns:
        The number of frames written.

    Raises:
        RuntimeError: if imageio's ffmpeg backend (``imageio-ffmpeg``) is not installed;
            without it imageio would pick another writer for the suffix and fail obscurely.
        ValueError: if there are no frames.
    """
    try:
        import imageio.v2 as imageio  # local: only videos need imageio and ffmpeg
        import imageio_ffmpeg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            f"writing {path} needs imageio and imageio-ffmpeg ({exc}): "
            "pip install imageio imageio-ffmpeg, or ask for no video"
        ) from None
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, macro_block_size=2) as writer:
            for frame in frames:
                writer.append_data(frame)
                count += 1
        if count == 0:
            raise ValueError(f"no frames to write to {path}")

    atomic_write(path, write)
    return count
