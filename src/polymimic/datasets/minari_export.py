"""Export a polymimic dataset to a Minari dataset (optional extra: ``polymimic[minari]``).

Minari 0.5.4 writes datasets offline from ``EpisodeBuffer`` objects with
``minari.create_dataset_from_buffers`` (its ``DataCollector`` would need jax). The mapping:

==========================  =====================================================
Minari episode              polymimic demo
==========================  =====================================================
``observations[key]``       ``obs/<key>`` (T rows) + the last row of ``next_obs/<key>``:
                            Minari stores T + 1 observations
``actions``                 ``actions`` (T, A)
``rewards``                 ``rewards`` (T,)
``terminations``            ``terminations`` (T,)
``truncations``             ``truncations`` (T,)
``seed``                    attr ``seed``: ``env.reset(seed=seed)`` gives the first state
episode metadata            every other demo attr (operator, quality, behaviour, ...) and
                            ``polymimic_demo`` (the demo's name in the HDF5 file)
==========================  =====================================================

The dataset's metadata names the env (its spec, with the dataset's ``env_kwargs``), the
source file, and the polymimic metadata. Nothing is lossy: image observations, if any, are
stored raw (``jpeg_encoding=False``).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polymimic.datasets.episode import Episode
from polymimic.datasets.hdf5 import (
    PathLike,
    demo_names,
    open_dataset,
    read_env_args,
    read_episode,
    read_json_attr,
)
from polymimic.envs.allowlist import check_env_args, make_env

MINARI_EXTRA_HINT = "pip install 'polymimic[minari]'"


class MinariNotInstalledError(ImportError):
    """The optional ``minari`` dependency is missing; the message says how to install it."""


def _import_minari() -> Any:
    try:
        import minari
        from minari.data_collector import EpisodeBuffer  # noqa: F401  (0.5.x API check)
    except ImportError:
        raise MinariNotInstalledError(
            f"exporting to Minari needs the optional dependency minari; run `{MINARI_EXTRA_HINT}`"
        ) from None
    return minari


@contextlib.contextmanager
def _datasets_root(out_dir: PathLike | None) -> Iterator[None]:
    """Point Minari at ``out_dir`` for the duration (it reads MINARI_DATASETS_PATH per call)."""
    if out_dir is None:
        yield
        return
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = os.fspath(Path(out_dir).resolve())
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _metadata_value(value: Any) -> Any:
    # Minari keeps episode metadata as HDF5 attrs: plain scalars and strings only.
    return value if isinstance(value, bool | int | float | str) else str(value)


def episode_buffer(episode: Episode, name: str) -> tuple[Any, dict[str, Any]]:
    """One demo as a Minari ``EpisodeBuffer`` (T + 1 observations) and its metadata."""
    from minari.data_collector import EpisodeBuffer

    observations = {
        key: np.concatenate([episode.obs[key], episode.next_obs[key][-1:]]) for key in episode.obs
    }
    attrs = dict(episode.attrs)
    seed = attrs.pop("seed", None)
    buffer = EpisodeBuffer(
        seed=int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None,
        observations=observations,
        actions=episode.actions,
        rewards=episode.rewards,
        terminations=episode.terminations,
        truncations=episode.truncations,
    )
    metadata = {k: _metadata_value(v) for k, v in attrs.items()}
    return buffer, {**metadata, "polymimic_demo": name}


def export_minari(
    path: PathLike,
    dataset_id: str,
    out_dir: PathLike | None = None,
    filter_key: str | None = None,
) -> Path:
    """Write the demos of a polymimic file as the Minari dataset ``dataset_id``.

    Args:
        path: the polymimic HDF5 file.
        dataset_id: Minari id, ``namespace/env/name-vN`` (e.g.
            ``polymimic/push/multi-operator-v1``); Minari refuses an id that exists.
        out_dir: Minari's datasets root (default: ``$MINARI_DATASETS_PATH`` or
            ``~/.minari/datasets``).
        filter_key: export only ``mask/<filter_key>`` (default: every demo).

    Returns:
        The Minari dataset's directory.

    Raises:
        MinariNotInstalledError: minari is not installed (names the pip command).
        DatasetError: unreadable file or unknown filter key.
        ValueError: Minari refuses the id (malformed, or already present).
    """
    minari = _import_minari()

    import polymimic  # noqa: F401  (registers the env ids Minari records the spec of)

    with open_dataset(path) as f:
        env_args = read_env_args(f)
        source_metadata = read_json_attr(f, "polymimic_metadata")
        pairs = [episode_buffer(read_episode(f, n), n) for n in demo_names(f, filter_key)]
    env = make_env(*check_env_args(env_args))
    try:
        with _datasets_root(out_dir), warnings.catch_warnings():
            # Minari warns about every optional field left empty (author e-mail, permalink).
            warnings.simplefilter("ignore", UserWarning)
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=[buffer for buffer, _ in pairs],
                env=env,
                algorithm_name="polymimic scripted operators",
                author="polymimic",
                description=_description(path, filter_key, source_metadata),
                jpeg_encoding=False,
            )
            dataset.storage.update_episode_metadata([metadata for _, metadata in pairs])
            dataset.storage.update_metadata(
                {"polymimic_source": os.fspath(path), "polymimic_env_args": json.dumps(env_args)}
            )
    finally:
        env.close()
    return Path(dataset.storage.data_path).parent


def _description(path: PathLike, filter_key: str | None, metadata: dict[str, Any]) -> str:
    subset = f" (mask '{filter_key}')" if filter_key else ""
    what = metadata.get("description") or metadata.get("dataset_name") or "polymimic dataset"
    return f"{what} Exported from {Path(path).name}{subset} by polymimic."
