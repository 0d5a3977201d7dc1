"""The one check of what a file may ask an environment for.

Datasets (``data.attrs["env_args"]``), checkpoints (``config.json``) and leaderboard
submissions name the environment they belong to. Those files come from other people, so the
name and its keyword arguments are checked here, against an allowlist, before anything is
made from them:

- **The id must be one of polymimic's registered task ids** (``polymimic.envs.TASK_IDS``),
  compared as an exact string. Gymnasium's ``gym.make("module:Env-v0")`` syntax imports
  ``module`` (a ``module.py`` in the working directory is enough), so a free-form id would let
  a file run code; any other registered id may point at its own XML files or never end.
- **Only the documented keyword arguments, each with bounds** (``ALLOWED_KWARGS``): the
  observation mode, cameras and image sizes (bounded by the model's offscreen framebuffer,
  so a file cannot ask for gigabyte frames), the render mode, and ``max_episode_steps`` no
  longer than the task's registered limit (a file cannot make an endless episode).

Every path that makes an environment from a file goes through :func:`make_env` (evaluation,
playback, training, the Minari export, the leaderboard); code that makes a task it chose
itself may call ``gym.make`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from polymimic.errors import UserError

#: The most JSON an ``env_args`` document may hold (polymimic writes ~150 bytes).
MAX_ENV_ARGS_BYTES = 64 * 1024
#: The cameras every task's model has (a test checks each task against this list).
CAMERAS = ("front", "top", "wrist")


class EnvRequestError(UserError):
    """A file or option asks for an environment, or env kwargs, that are not allowed."""


def _bounded_int(low: int, high: Callable[[str], int] | int) -> Callable[[str, str, Any], Any]:
    def check(env_id: str, key: str, value: Any) -> Any:
        top = high(env_id) if callable(high) else high
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
            raise EnvRequestError(
                f"env kwarg {key}={value!r} is not allowed for {env_id}: it must be an integer "
                f"in [{low}, {top}]"
            )
        return value

    return check


def _one_of(*choices: Any) -> Callable[[str, str, Any], Any]:
    def check(env_id: str, key: str, value: Any) -> Any:
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise EnvRequestError(
                f"env kwarg {key}={value!r} is not allowed for {env_id}: choose one of "
                f"{list(choices)}"
            )
        return value

    return check


def _camera_name(env_id: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or value not in CAMERAS:
        raise EnvRequestError(
            f"env kwarg {key}={value!r} is not allowed for {env_id}: choose a camera of "
            f"{list(CAMERAS)}"
        )
    return value


def _camera_list(env_id: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise EnvRequestError(
            f"env kwarg {key}={value!r} is not allowed for {env_id}: it must be a list of "
            "camera names"
        )
    if not 1 <= len(value) <= len(CAMERAS) or len(set(map(str, value))) != len(value):
        raise EnvRequestError(
            f"env kwarg {key} for {env_id} must list 1 to {len(CAMERAS)} distinct cameras, "
            f"got {list(value)!r}"
        )
    return tuple(_camera_name(env_id, key, camera) for camera in value)


def _max_steps(env_id: str) -> int:
    return int(_task_class(env_id).max_episode_steps)


def _render_limit(attribute: str) -> Callable[[str], int]:
    def limit(env_id: str) -> int:
        from polymimic.envs import base  # the framebuffer size lives with the model XML

        return int(getattr(base, attribute))

    return limit


#: Keyword arguments a file may pass to ``gym.make`` for a polymimic task, with their checks.
ALLOWED_KWARGS: dict[str, Callable[[str, str, Any], Any]] = {
    "obs_mode": _one_of("state", "rgb", "state+rgb"),
    "cameras": _camera_list,
    "camera_height": _bounded_int(1, _render_limit("MAX_RENDER_HEIGHT")),
    "camera_width": _bounded_int(1, _render_limit("MAX_RENDER_WIDTH")),
    "render_mode": _one_of(None, "rgb_array"),
    "render_height": _bounded_int(1, _render_limit("MAX_RENDER_HEIGHT")),
    "render_width": _bounded_int(1, _render_limit("MAX_RENDER_WIDTH")),
    "render_camera": _camera_name,
    "max_episode_steps": _bounded_int(1, _max_steps),
}


def _task_class(env_id: str) -> Any:
    from polymimic.envs import TASK_CLASSES  # late: this module is imported by envs itself

    return next(cls for cls in TASK_CLASSES if cls.task_id == env_id)


def check_env_id(env_id: Any) -> str:
    """Return ``env_id`` if it is exactly one of polymimic's task ids.

    Raises:
        EnvRequestError: anything else, including Gymnasium's ``module:Env`` import syntax.
    """
    from polymimic.envs import TASK_IDS

    if not isinstance(env_id, str) or env_id not in TASK_IDS:
        shown = repr(env_id)[:80]
        hint = " (the 'module:' form would import code, which polymimic never does)" if (
            isinstance(env_id, str) and ":" in env_id
        ) else ""
        raise EnvRequestError(
            f"environment id {shown} is not a polymimic task{hint}; "
            f"allowed ids: {', '.join(TASK_IDS)}"
        )
    return env_id


def check_env_request(env_id: Any, env_kwargs: Any = None) -> tuple[str, dict[str, Any]]:
    """Check an env id and its kwargs against the allowlist; return them normalised.

    Args:
        env_id: the requested id, e.g. ``"polymimic/Push-v1"``.
        env_kwargs: a mapping of keyword arguments for ``gym.make`` (None: none).

    Returns:
        ``(env_id, kwargs)``, kwargs a new dict (camera lists as tuples).

    Raises:
        EnvRequestError: an id that is not a polymimic task, a kwarg that is not in
            ``ALLOWED_KWARGS``, or a value outside its bounds.
    """
    env_id = check_env_id(env_id)
    if env_kwargs is None:
        env_kwargs = {}
    if not isinstance(env_kwargs, Mapping):
        raise EnvRequestError(f"env kwargs for {env_id} must be a JSON object, got {env_kwargs!r}")
    unknown = sorted(str(k) for k in env_kwargs if k not in ALLOWED_KWARGS)
    if unknown:
        raise EnvRequestError(
            f"env kwargs {unknown} are not allowed for {env_id}; allowed: "
            f"{', '.join(ALLOWED_KWARGS)}"
        )
    return env_id, {key: ALLOWED_KWARGS[key](env_id, key, v) for key, v in env_kwargs.items()}


def check_env_args(env_args: Any) -> tuple[str, dict[str, Any]]:
    """Check robomimic-style ``env_args`` (``env_name`` + ``env_kwargs``) from a file.

    Raises:
        EnvRequestError: not a JSON object, no ``env_name``, or a request ``check_env_request``
            refuses.
    """
    if not isinstance(env_args, Mapping) or "env_name" not in env_args:
        raise EnvRequestError(
            "env_args must be a JSON object with 'env_name' (a polymimic task id) and "
            f"'env_kwargs'; got {str(env_args)[:120]!r}"
        )
    return check_env_request(env_args["env_name"], env_args.get("env_kwargs"))


def make_env(env_id: Any, env_kwargs: Any = None, **overrides: Any) -> gym.Env:
    """``gym.make`` for an id and kwargs that came from a file, after checking both.

    Args:
        env_id: the requested task id.
        env_kwargs: the requested kwargs (checked).
        **overrides: kwargs the caller itself chose (a render size for a video); checked by
            the same rules, and they take precedence over ``env_kwargs``.

    Raises:
        EnvRequestError: see :func:`check_env_request`.
    """
    env_id, kwargs = check_env_request(env_id, {**dict(env_kwargs or {}), **overrides})
    import polymimic  # noqa: F401  (registers the ids and picks a GL backend first)

    return gym.make(env_id, **kwargs)
