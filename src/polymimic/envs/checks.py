"""Validation of what a user hands an environment: constructor arguments, actions, states.

Kept apart from :mod:`polymimic.envs.base` so the base class stays about simulation. Every
check raises a :class:`~polymimic.errors.UserError` subclass whose one-line message names
the argument, what is allowed and the fix. The limits themselves (framebuffer size, camera
count, observation modes) live in ``base`` next to the model XML they describe and are
passed in, so this module imports nothing from the environments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from polymimic.errors import InvalidActionError, UserError

_STATE_FIX = (
    "valid states come from get_state() of the same task and polymimic version "
    "(e.g. a dataset recorded with them)"
)


class EnvConfigError(UserError):
    """An environment constructor or reset argument outside what the task accepts."""


class InvalidStateError(UserError):
    """A state vector ``reset_to`` cannot restore (wrong length, non-finite, out of range)."""


# ----------------------------------------------------------------- constructor arguments
def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise unless ``value`` is one of ``choices``.

    Raises:
        EnvConfigError: naming ``name`` and the choices.
    """
    if not any(
        value is choice or (isinstance(value, str) and value == choice) for choice in choices
    ):
        raise EnvConfigError(
            f"{name}={value!r} is not supported; use one of {', '.join(map(repr, choices))}"
        )


def check_image_size(
    prefix: str, height: Any, width: Any, max_height: int, max_width: int
) -> tuple[int, int]:
    """Validate ``<prefix>_height`` and ``<prefix>_width`` against the framebuffer.

    Args:
        prefix: ``"render"`` or ``"camera"``, for the message.
        height, width: the requested image size in pixels.
        max_height, max_width: the model's offscreen framebuffer size.

    Returns:
        (height, width) as Python ints.

    Raises:
        EnvConfigError: a non-integer or a size outside ``[1, max]``.
    """
    sizes = []
    for axis, value, limit in (("height", height, max_height), ("width", width, max_width)):
        # bool is an int subclass; True as a size is a mistake, not 1 pixel.
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise EnvConfigError(
                f"{prefix}_{axis} must be an integer number of pixels in [1, {limit}], "
                f"got {value!r}"
            )
        if not 1 <= value <= limit:
            raise EnvConfigError(
                f"{prefix}_{axis}={value} is outside [1, {limit}] (the maximum is {limit}: "
                f"the offscreen framebuffer is {max_width}x{max_height}); pass a "
                f"{prefix}_{axis} in that range and resize the images afterwards if you "
                "need larger ones"
            )
        sizes.append(int(value))
    return sizes[0], sizes[1]


def check_camera_list(cameras: Any, min_cameras: int, max_cameras: int) -> tuple[str, ...]:
    """Validate the ``cameras`` argument's form (names are checked against the model later).

    Raises:
        EnvConfigError: not a sequence of strings, too short or long, or with duplicates.
    """
    if isinstance(cameras, str) or not isinstance(cameras, Sequence):
        raise EnvConfigError(
            f"cameras must be a list of camera names such as ('front',), got {cameras!r}"
        )
    names = tuple(cameras)
    if not all(isinstance(name, str) for name in names):
        raise EnvConfigError(f"cameras must contain camera names (strings), got {names!r}")
    if not min_cameras <= len(names) <= max_cameras or len(set(names)) != len(names):
        raise EnvConfigError(
            f"cameras must list {min_cameras} to {max_cameras} distinct camera names, got {names!r}"
        )
    return names


def check_camera_names(argument: str, names: Sequence[str], known: Sequence[str]) -> None:
    """Raise unless every name in ``names`` is a camera of the compiled model.

    Raises:
        EnvConfigError: naming the unknown camera and the task's cameras.
    """
    for name in names:
        if name not in known:
            raise EnvConfigError(
                f"unknown camera {name!r} in {argument}; this task has {tuple(known)}"
            )


# ----------------------------------------------------------------- actions
def non_finite_action_error(values: list[float]) -> InvalidActionError:
    """The error for an action with NaN or infinite elements (built only on failure)."""
    bad = ", ".join(
        f"{value} at index {index}"
        for index, value in enumerate(values)
        if not math.isfinite(value)
    )
    return InvalidActionError(
        f"action {values} has non-finite values ({bad}); actions must be finite numbers "
        "(finite values outside the action space are clipped to it)"
    )


def as_action_array(action: Any) -> np.ndarray:
    """``action`` as a float64 array; anything numpy cannot read as numbers is refused.

    Raises:
        InvalidActionError: e.g. strings, None or ragged lists.
    """
    try:
        return np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        shown = " ".join(repr(action).split())[:100]  # one line, even for a big array
        raise InvalidActionError(
            f"action {shown} is not an array of real numbers ({exc}); pass one float per "
            "action dimension"
        ) from exc


# ----------------------------------------------------------------- states
def _state_part(index: int, physics_size: int) -> str:
    """The part of the ``get_state()`` layout that element ``index`` belongs to."""
    if index < physics_size:
        return "physics"
    if index < physics_size + 3:
        return "controller target"
    return "context id" if index == physics_size + 3 else "task progress"


def _check_finite(state: np.ndarray, task: str, physics_size: int) -> None:
    """Raise naming the first few NaN/infinite elements of ``state`` and their parts."""
    bad = np.flatnonzero(~np.isfinite(state))
    if bad.size:
        shown = ", ".join(
            f"{state[i]} at index {i} ({_state_part(int(i), physics_size)})" for i in bad[:3]
        )
        more = f" and {bad.size - 3} more" if bad.size > 3 else ""
        raise InvalidStateError(
            f"state for {task} has non-finite values: {shown}{more}; {_STATE_FIX}"
        )


def check_state(
    state: Any,
    *,
    task: str,
    physics_size: int,
    state_size: int,
    num_contexts: int,
    target_bounds: tuple[tuple[float, ...], tuple[float, ...]],
) -> np.ndarray:
    """Validate a ``get_state()`` vector before anything of it reaches the simulation.

    Layout (see ``ArmTaskEnv.get_state``): ``physics_size`` MuJoCo integration-state
    floats, the controller target (3), the context id (1), then the task's progress.

    Args:
        state: the vector to restore.
        task: the task class name, for messages.
        physics_size, state_size: the layout's sizes for this task.
        num_contexts: context ids must be integers in ``[0, num_contexts)``.
        target_bounds: (low, high) x, y, z limits of the controller target, in m.

    Returns:
        ``state`` as a float64 array.

    Raises:
        InvalidStateError: the first problem found, and where valid states come from.
    """
    try:
        state = np.asarray(state, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidStateError(
            f"state for {task} is not a vector of numbers ({exc}); {_STATE_FIX}"
        ) from exc
    if state.shape != (state_size,):
        raise InvalidStateError(
            f"state has shape {state.shape}, expected ({state_size},) for {task}; was it "
            f"recorded with another task or version? {_STATE_FIX}"
        )
    _check_finite(state, task, physics_size)
    target = state[physics_size : physics_size + 3].tolist()
    low, high = target_bounds
    if not all(lo <= value <= hi for value, lo, hi in zip(target, low, high, strict=True)):
        raise InvalidStateError(
            f"state for {task} has controller target {target} (indices {physics_size}-"
            f"{physics_size + 2}) outside x in [{low[0]}, {high[0]}], y in [{low[1]}, "
            f"{high[1]}], z in [{low[2]}, {high[2]}] m; {_STATE_FIX}"
        )
    context = float(state[physics_size + 3])
    if not (context.is_integer() and 0 <= context < num_contexts):
        raise InvalidStateError(
            f"state for {task} has context id {context} (index {physics_size + 3}), not an "
            f"integer in [0, {num_contexts}); {_STATE_FIX}"
        )
    return state
