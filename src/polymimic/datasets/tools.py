"""Dataset tools after generation: replay demos to video, split train/valid, masks from attrs.

The counterparts of robomimic's ``playback_dataset.py`` and ``split_train_val.py``, and of
the filter keys robomimic ships with its multi-human datasets (``better``/``okay``/``worse``),
written from the demos' own attributes. Masks are written through
:func:`polymimic.datasets.hdf5.write_masks`, one atomic replacement per mask.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.hdf5 import (
    DatasetError,
    PathLike,
    _decode_attr,
    choose_valid,
    demo_attrs,
    demo_names,
    mask_keys,
    open_dataset,
    read_demo_arrays,
    read_env_args,
    write_masks,
)
from polymimic.errors import OptionError
from polymimic.io import check_output_file, write_mp4

#: Masks the generator writes and learners select by; ``masks_from_attribute`` refuses to
#: replace them unless forced, so a typo in ``--prefix`` cannot silently change a training set.
PROTECTED_MASKS = ("train", "valid", "failed")
#: Default mask-name prefix per attribute; robomimic names quality masks by the bare value.
DEFAULT_PREFIXES = {"quality": ""}


# --------------------------------------------------------------------------- split


def failed_demos(f: h5py.File) -> set[str]:
    """Demos of ``mask/failed`` plus those whose ``success`` attr is false."""
    failed = set()
    if "failed" in mask_keys(f):
        failed |= set(demo_names(f, "failed"))
    for name in demo_names(f):
        success = f["data"][name].attrs.get("success")
        if success is not None and not bool(_decode_attr(success)):
            failed.add(name)
    return failed


def split_train_valid(
    path: PathLike, valid_fraction: float = 0.1, seed: int = 0, filter_key: str | None = None
) -> dict[str, list[str]]:
    """(Re)write a train/valid split of the successful demos, deterministic given ``seed``.

    robomimic's ``split_train_val`` semantics: the demos of ``mask/<filter_key>`` (every demo
    when None) are split, and the masks are named ``train``/``valid``, or
    ``<filter_key>_train``/``<filter_key>_valid`` with a filter key. Failed demos
    (:func:`failed_demos`) are left out of both. The count follows the generator's rule:
    ``round(valid_fraction * n)`` valid demos, at least one once ``n >= 2`` and
    ``valid_fraction > 0``, never all of them; which ones is
    ``default_rng(seed).permutation(n)`` over the candidates in demo order, so the same
    fraction and seed reproduce the split ``polymimic data generate`` wrote.

    Returns:
        ``{train_key: names, valid_key: names}`` as written.

    Raises:
        ValueError: a fraction outside [0, 1) or no successful demo to split.
        DatasetError: an unreadable file or unknown filter key.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    with open_dataset(path) as f:
        failed = failed_demos(f)
        candidates = [n for n in demo_names(f, filter_key) if n not in failed]
    if not candidates:
        scope = f"mask '{filter_key}'" if filter_key else "the file"
        raise DatasetError(f"{path}: {scope} holds no successful demo to split")
    chosen = choose_valid(candidates, valid_fraction, seed)
    prefix = f"{filter_key}_" if filter_key else ""
    masks = {
        f"{prefix}train": [c for c in candidates if c not in chosen],
        f"{prefix}valid": [c for c in candidates if c in chosen],
    }
    write_masks(path, masks)
    return masks


# --------------------------------------------------------------------------- masks


def demo_attributes(f: h5py.File) -> dict[str, dict[str, Any]]:
    """Every demo's attrs (``num_samples`` left out), decoded to plain Python values."""
    return {name: demo_attrs(f["data"][name]) for name in demo_names(f)}


def masks_from_attribute(
    path: PathLike, attribute: str, prefix: str | None = None, force: bool = False
) -> dict[str, list[str]]:
    """Write one mask per value of a demo attribute, e.g. ``better``/``okay``/``worse``.

    The mask of value ``v`` is ``<prefix><v>``; the default prefix is ``""`` for ``quality``
    (robomimic's filter keys) and ``"<attribute>_"`` otherwise (``operator_op1``,
    ``behaviour_red-left``, ``style_curved``). Demos without the attribute are in no mask.
    Masks are stored as byte strings, sorted by demo index, as robomimic does.

    Args:
        path: the dataset file (modified in place).
        attribute: a demo attr name: quality, operator, behaviour, style, strategy, ...
        prefix: mask-name prefix, overriding the default.
        force: allow replacing ``train``, ``valid`` or ``failed``.

    Returns:
        ``{mask key: demo names}`` as written.

    Raises:
        DatasetError: no demo has the attribute (the message lists those that exist), or a
            mask would replace a protected one without ``force``.
    """
    with open_dataset(path) as f:
        attributes = demo_attributes(f)
    known = sorted({k for attrs in attributes.values() for k in attrs})
    if attribute not in known:
        raise DatasetError(
            f"{path}: no demo has the attribute {attribute!r}; demo attributes are {known}"
        )
    prefix = DEFAULT_PREFIXES.get(attribute, f"{attribute}_") if prefix is None else prefix
    masks: dict[str, list[str]] = {}
    for name, attrs in attributes.items():
        if attribute in attrs:
            masks.setdefault(f"{prefix}{attrs[attribute]}", []).append(name)
    clash = sorted(set(masks) & set(PROTECTED_MASKS))
    if clash and not force:
        raise DatasetError(
            f"{path}: --by {attribute} would overwrite the mask(s) {clash}, which select "
            "training data. Pass --force to replace them, or choose another --prefix"
        )
    write_masks(path, masks)
    return masks


# --------------------------------------------------------------------------- playback


@dataclasses.dataclass(frozen=True)
class PlaybackResult:
    """What a playback rendered.

    Attributes:
        video: the mp4 written.
        demos: the demos played, in order.
        num_frames: frames in the video.
        max_state_divergence: with actions, the largest ``|get_state() - states[t+1]|``
            over every replayed step (0.0 for a deterministic env); None for states.
    """

    video: Path
    demos: list[str]
    num_frames: int
    max_state_divergence: float | None


def select_demos(
    f: h5py.File,
    demo: str | None = None,
    num_demos: int | None = None,
    filter_key: str | None = None,
) -> list[str]:
    """One named demo, or the first ``num_demos`` (default all) of a mask or the file."""
    if demo is not None:
        if demo not in f["data"]:
            raise DatasetError(f"{f.filename}: no demo {demo!r}; see `polymimic data info`")
        return [demo]
    names = demo_names(f, filter_key)
    return names if num_demos is None else names[: max(num_demos, 0)]


def make_playback_env(env_args: dict[str, Any], camera: str, size: tuple[int, int]) -> Any:
    """The dataset's env, re-created from ``env_args`` with ``render()`` frames of ``size``.

    Raises:
        EnvRequestError: ``env_args`` (from the file) or the render settings are outside the
            env allowlist (``polymimic.envs.allowlist``).
    """
    from polymimic.envs.allowlist import check_env_args, make_env

    env_id, kwargs = check_env_args(env_args)
    return make_env(
        env_id, kwargs, render_mode="rgb_array", render_height=size[0], render_width=size[1],
        render_camera=camera,
    )


def _replay_states(env: Any, states: np.ndarray) -> Iterator[np.ndarray]:
    for state in states:
        env.unwrapped.reset_to(state)
        yield env.render()


def _replay_actions(
    env: Any, states: np.ndarray, actions: np.ndarray, divergence: list[float]
) -> Iterator[np.ndarray]:
    """Frames from ``states[0]`` through every action; ``divergence[0]`` keeps the largest
    ``|get_state() - states[t + 1]|`` seen so far."""
    env.unwrapped.reset_to(states[0])
    yield env.render()
    for t, action in enumerate(actions):
        env.step(action)
        yield env.render()
        if t + 1 < len(states):
            gap = float(np.max(np.abs(env.unwrapped.get_state() - states[t + 1])))
            divergence[0] = max(divergence[0], gap)


def _read_for_playback(
    path: PathLike, demo: str | None, num_demos: int | None, filter_key: str | None
) -> tuple[list[str], dict[str, Any], list[tuple[np.ndarray, np.ndarray, int]]]:
    """Selected names, env_args and (states, actions, seed) of each selected demo."""
    with open_dataset(path) as f:
        names = select_demos(f, demo, num_demos, filter_key)
        if not names:
            raise DatasetError(f"{path}: no demo selected to play back")
        env_args = read_env_args(f)
        episodes = []
        for name in names:
            arrays = read_demo_arrays(f, name, ["states", "actions"])
            seed = demo_attrs(f["data"][name]).get("seed", 0)
            seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
            episodes.append((arrays["states"], arrays["actions"], seed))
    return names, env_args, episodes


def playback(
    path: PathLike,
    video: PathLike,
    demo: str | None = None,
    num_demos: int | None = None,
    filter_key: str | None = None,
    use_actions: bool = False,
    camera: str = "front",
    size: tuple[int, int] = (240, 320),
    video_skip: int = 1,
) -> PlaybackResult:
    """Replay demos in their env and write the rendered frames to an mp4.

    By default each recorded state is restored with ``env.unwrapped.reset_to`` and rendered
    (T frames per demo). With ``use_actions`` the env is set to the first state and the
    recorded actions are stepped (T + 1 frames, the last after the final action), checking
    after every step how far the simulated state is from the recorded one.

    Args:
        path: the dataset.
        video: the mp4 to write (atomically).
        demo: one demo by name; otherwise the first ``num_demos`` (default all) of
            ``mask/<filter_key>`` (default: every demo).
        use_actions: replay actions instead of states.
        camera: a camera of the task (``front``, ``top``, ...).
        size: (height, width) in pixels.
        video_skip: keep every ``video_skip``-th frame (the fps is divided alike).

    Raises:
        DatasetError: unreadable file, unknown demo or mask, nothing selected.
    """
    if video_skip < 1:
        raise OptionError(f"video_skip must be >= 1, got {video_skip}")
    check_output_file(video, "video")
    names, env_args, episodes = _read_for_playback(path, demo, num_demos, filter_key)
    env = make_playback_env(env_args, camera, size)
    divergence = [0.0]  # updated while the frames stream into the video

    def frames() -> Iterator[np.ndarray]:
        for states, actions, seed in episodes:
            env.reset(seed=seed)  # the wrappers refuse step/render before a reset
            if use_actions:
                demo_frames = _replay_actions(env, states, actions, divergence)
            else:
                demo_frames = _replay_states(env, states)
            yield from itertools.islice(demo_frames, 0, None, video_skip)

    try:
        fps = (env.metadata.get("render_fps") or 20) / video_skip
        count = write_mp4(video, frames(), fps)
    finally:
        env.close()
    return PlaybackResult(Path(video), names, count, divergence[0] if use_actions else None)
