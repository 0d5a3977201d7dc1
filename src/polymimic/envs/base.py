"""The base class every polymimic task shares: arm, controller, stepping, replay, rendering.

A task subclass supplies its objects' MJCF, its initial-state distribution, its
observations and its progress/behaviour bookkeeping; this class owns everything else, so
the timing, controller and replay guarantees are the same in every task.

The limits a caller must respect (``MAX_RENDER_WIDTH``, ``MAX_RENDER_HEIGHT``,
``MAX_CAMERAS``, ``OBS_MODES``, ``TARGET_BOUNDS``) are module constants so that code that
checks requests before building an env (``polymimic.envs.allowlist``) uses the same values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from polymimic.envs.checks import (
    EnvConfigError,
    InvalidStateError,
    as_action_array,
    check_camera_list,
    check_camera_names,
    check_choice,
    check_image_size,
    check_state,
    non_finite_action_error,
)
from polymimic.envs.rendering import make_renderer
from polymimic.envs.robot import (
    ArmIndices,
    CartesianController,
    arm_actuators_xml,
    arm_defaults_xml,
    arm_xml,
    solve_home_qpos,
)
from polymimic.errors import InvalidActionError

# The site frame points straight down: x along world x, z along world -z.
TOOL_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
OBS_MODES = ("state", "rgb", "state+rgb")
# The offscreen framebuffer compiled into every model (<global offwidth/offheight>): no
# render() frame or image observation can be larger. Changing them changes the compiled
# model, so they are fixed per task version.
MAX_RENDER_WIDTH = 640
MAX_RENDER_HEIGHT = 480
MAX_CAMERAS = 4  # image observations per step; more is a mistake (and slow)
# reset_to() accepts controller targets in this box (m, world frame: x, y, z). A sanity
# bound, not a task's workspace: every task clips its target to a box well inside it
# (x in [0.28, 0.80], |y| <= 0.35, z in [0.015, 0.30]) and the arm cannot reach its edges,
# so a target outside comes from a corrupt or foreign state, never from get_state().
TARGET_BOUNDS = ((-1.5, -1.5, -0.1), (1.5, 1.5, 1.5))
# Public: the limits (read by envs/allowlist.py), the errors and the tasks' helpers.
__all__ = [
    "MAX_CAMERAS", "MAX_RENDER_HEIGHT", "MAX_RENDER_WIDTH", "OBS_MODES", "TARGET_BOUNDS",
    "TOOL_DOWN", "ArmTaskEnv", "EnvConfigError", "InvalidStateError", "planar_pose_obs",
    "step_target", "unit_action_space", "vector_spaces",
]  # fmt: skip


class ArmTaskEnv(gym.Env):
    """Shared machinery of the tabletop tasks; see each task's docstring for its spec.

    Subclasses set the class attributes below and implement the ``_task_*`` hooks.

    **Input checks.** What a caller passes is checked before it reaches MuJoCo, and a
    refused input raises a :class:`~polymimic.errors.UserError` (a ``ValueError``) with a
    one-line message and leaves the env exactly as it was:

    * constructor arguments (``EnvConfigError``): ``render_height``/``camera_height`` in
      ``[1, MAX_RENDER_HEIGHT]`` and ``render_width``/``camera_width`` in
      ``[1, MAX_RENDER_WIDTH]`` (the model's offscreen framebuffer, 640 x 480), ``obs_mode``
      in ``OBS_MODES``, ``cameras`` 1 to ``MAX_CAMERAS`` distinct camera names and
      ``render_camera`` a camera of the model;
    * ``step`` (``InvalidActionError``): an action of the wrong shape or with a NaN or
      infinite element; finite values outside the action space are clipped, as always;
    * ``reset_to`` (``InvalidStateError``): see its docstring.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    task_id: ClassVar[str] = ""  # the gym id the task is registered under
    behaviours: ClassVar[tuple[str, ...]] = ()  # the task's modes, without "other"
    num_contexts: ClassVar[int] = 1  # initial-state contexts, selectable at reset
    physics_timestep: ClassVar[float] = 0.002  # s
    substeps: ClassVar[int] = 25  # physics steps per control step (20 Hz control)
    max_episode_steps: ClassVar[int] = 400  # registered with the TimeLimit wrapper
    task_state_size: ClassVar[int] = 0  # floats of task progress appended to get_state()
    physics_options: ClassVar[str] = ""  # extra <option> attributes, e.g. 'impratio="10"'

    def __init__(
        self,
        render_mode: str | None = None,
        render_height: int = 240,
        render_width: int = 320,
        render_camera: str = "front",
        obs_mode: str = "state",
        cameras: Sequence[str] = ("front",),
        camera_height: int = 96,
        camera_width: int = 96,
    ) -> None:
        """Args:
        render_mode: ``"rgb_array"`` for ``render()`` frames (videos), else None.
        render_height, render_width, render_camera: size and camera of ``render()``; at
            most ``MAX_RENDER_HEIGHT`` x ``MAX_RENDER_WIDTH`` (480 x 640) pixels.
        obs_mode: ``"state"`` (the task's low-dimensional keys), ``"rgb"`` (one
            ``<camera>_image`` uint8 (H, W, 3) key per camera) or ``"state+rgb"`` (both).
        cameras: cameras for image observations: ``"front"``, ``"top"``, ``"wrist"``;
            1 to ``MAX_CAMERAS`` distinct names (unused, but still checked, when
            ``obs_mode="state"``, where the list may also be empty).
        camera_height, camera_width: image observation size in pixels, limited as
            ``render_height``/``render_width``.

        Raises:
            EnvConfigError: an argument outside the ranges above (checked before the model
                is compiled, so a bad size fails here rather than inside the renderer).
        """
        # Checked in full even where unused (e.g. camera sizes in "state" mode) so that a
        # configuration is valid or not regardless of which features a run exercises.
        check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        check_choice("obs_mode", obs_mode, OBS_MODES)
        self.render_height, self.render_width = check_image_size(
            "render", render_height, render_width, MAX_RENDER_HEIGHT, MAX_RENDER_WIDTH
        )
        self.camera_height, self.camera_width = check_image_size(
            "camera", camera_height, camera_width, MAX_RENDER_HEIGHT, MAX_RENDER_WIDTH
        )
        # Image modes need a camera; "state" ignores the list, so it may be empty there.
        cameras = check_camera_list(cameras, int("rgb" in obs_mode), MAX_CAMERAS)
        self.render_mode = render_mode
        self.render_camera = render_camera
        self.obs_mode = obs_mode
        self.cameras = cameras if "rgb" in obs_mode else ()
        self._build_simulation()
        check_camera_names("render_camera", (render_camera,), self.camera_names)
        check_camera_names("cameras", cameras, self.camera_names)
        self.home_qpos = self._home_qpos()
        self.target_pos = np.zeros(3)  # the controller's Cartesian target (part of the state)
        self.context = 0
        self._renderer = None
        self._camera_renderer = None  # image observations; its size differs from render()'s
        self._state_size = mujoco.mj_stateSize(self.model, _STATE_SPEC)
        self.observation_space = self._compose_observation_space()
        self.action_space = self._action_space()
        # Python floats: step() clips with them every control step.
        self._action_bounds = (self.action_space.low.tolist(), self.action_space.high.tolist())
        self._action_shape = self.action_space.shape

    # ----------------------------------------------------------------- hooks for tasks
    def _task_xml(self) -> tuple[str, str]:
        """(end-effector MJCF on the flange, world-body MJCF of the task's objects)."""
        raise NotImplementedError

    def _home_tip_pos(self) -> np.ndarray:
        raise NotImplementedError

    def _task_actuators_xml(self) -> str:
        """Actuators beyond the arm's seven (e.g. a gripper), controls ``ctrl[7:]``."""
        return ""

    def _target_rotation(self) -> np.ndarray:
        """The controller's desired tool orientation (3x3 world matrix) this step.

        Tool pointing straight down by default; a task that controls yaw overrides this
        and keeps the yaw it derives from in its task state, so replay stays exact.
        """
        return TOOL_DOWN

    def _observation_space(self) -> gym.spaces.Dict:
        """The task's state observation keys (float32 Boxes)."""
        raise NotImplementedError

    def _action_space(self) -> gym.spaces.Box:
        raise NotImplementedError

    def _reset_task(self, options: dict[str, Any]) -> None:
        """Place objects for context ``self.context`` (perturbed from ``self.np_random``)
        and clear task progress."""
        raise NotImplementedError

    def _apply_action(self, action: list[float]) -> None:
        """Turn an action (clipped to the action space) into a new ``self.target_pos`` (and
        gripper command, if any)."""
        raise NotImplementedError

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        """After physics: update progress; return (reward, success, info extras)."""
        raise NotImplementedError

    def _get_obs(self) -> dict[str, np.ndarray]:
        """The task's state observation (the keys of ``_observation_space``)."""
        raise NotImplementedError

    def _task_state(self) -> np.ndarray:
        raise NotImplementedError

    def _set_task_state(self, task_state: np.ndarray) -> None:
        raise NotImplementedError

    def behaviour(self) -> str:
        """The behaviour label of the episode so far (final once the episode ends)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- model
    def _model_xml(self) -> str:
        end_effector, objects = self._task_xml()
        return f"""
<mujoco model="{type(self).__name__}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{self.physics_timestep}" integrator="implicitfast" {self.physics_options}/>
  <visual><global offwidth="{MAX_RENDER_WIDTH}" offheight="{MAX_RENDER_HEIGHT}"/><quality shadowsize="0" offsamples="0"/></visual>
  <default>{arm_defaults_xml()}</default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256"
             rgb1="0.55 0.45 0.35" rgb2="0.5 0.41 0.32"/>
    <material name="table" texture="grid" texrepeat="6 6"/>
  </asset>
  <worldbody>
    <light pos="0.4 0 1.5" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <camera name="front" pos="1.1 0 0.62" xyaxes="0 1 0 -0.72 0 0.69"/>
    <camera name="top" pos="0.55 0 1.3" xyaxes="0 1 0 -1 0 0"/>
    <geom name="table" type="box" pos="0.55 0 -0.02" size="0.6 0.6 0.02" material="table"
          friction="0.5 0.005 0.0001"/>
    <body name="base" childclass="arm">{arm_xml(end_effector)}</body>
    {objects}
  </worldbody>
  <actuator>{arm_actuators_xml()}{self._task_actuators_xml()}</actuator>
</mujoco>"""

    def _home_qpos(self) -> np.ndarray:
        # The home pose depends only on the model, so it is solved once per class.
        cache = type(self).__dict__.get("_home_qpos_cache")
        if cache is None:
            cache = solve_home_qpos(self.model, self.arm, self._home_tip_pos(), TOOL_DOWN)
            type(self)._home_qpos_cache = cache
        return cache.copy()

    # ----------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self.arm.qpos] = self.home_qpos
        self.data.ctrl[:7] = self.home_qpos
        self.target_pos = self._home_tip_pos().copy()
        options = dict(options or {})
        self.context = self._choose_context(options.get("context"))
        self._reset_task(options)
        mujoco.mj_forward(self.model, self.data)
        return self._observe(), self._info(success=False, extras={})

    def _choose_context(self, requested: Any) -> int:
        """The requested context id, validated; drawn from the seed when None."""
        if requested is None:
            return int(self.np_random.integers(self.num_contexts))
        if isinstance(requested, bool) or not isinstance(requested, int | np.integer):
            raise EnvConfigError(f"options['context'] must be an int, got {requested!r}")
        if not 0 <= requested < self.num_contexts:
            raise EnvConfigError(
                f"context {requested} does not exist: {type(self).__name__} has contexts "
                f"0..{self.num_contexts - 1}"
            )
        return int(requested)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one control step (``substeps`` physics steps).

        Finite values outside the action space are clipped to it. A NaN or infinite
        element is refused rather than clipped: ``min(max(nan, low), high)`` is NaN, which
        would poison the controller target for the rest of the episode, and an infinity
        is almost always a bug upstream (a policy that diverged), not a saturated command.

        Raises:
            InvalidActionError: the action has the wrong shape, is not numeric, or has a
                NaN or infinite element; the env state is unchanged (``get_state()`` is
                as before the call) and the episode can continue with a valid action.
        """
        if not (isinstance(action, np.ndarray) and action.dtype.kind == "f"):
            action = as_action_array(action)
        if action.shape != self._action_shape:
            raise InvalidActionError(
                f"action has shape {action.shape}, expected {self._action_shape} for "
                f"{type(self).__name__}: one value per dimension of env.action_space"
            )
        # Checked and clipped as Python floats: for 2-4 numbers that is cheaper than numpy
        # calls, and float32 -> float gives exactly the float64 values numpy would.
        values = action.tolist()
        if not all(map(math.isfinite, values)):
            raise non_finite_action_error(values)
        lows, highs = self._action_bounds
        self._apply_action(
            [
                min(max(value, low), high)
                for value, low, high in zip(values, lows, highs, strict=True)
            ]
        )
        self.controller.joint_targets(
            self.data, self.target_pos, self._target_rotation(), out=self.arm_ctrl
        )
        self._advance_physics()
        reward, success, extras = self._update_task()
        return self._observe(), reward, success, False, self._info(success, extras)

    def _advance_physics(self) -> None:
        """Run ``substeps`` physics steps, leaving the position/velocity stage of the next
        one computed.

        MuJoCo's split step: ``mj_step1`` computes everything that depends on positions and
        velocities (kinematics, contacts), ``mj_step2`` the forces and the integration.
        Ending a control step with ``mj_step1`` gives the observation, the IK and the task's
        contact checks the configuration the physics ended in (a plain ``mj_step`` leaves
        them one substep stale), and the next control step starts with the matching
        ``mj_step2``, so the physics does exactly the work of ``mj_step(nstep=substeps)``.
        Precondition: that stage is current (``reset``/``reset_to`` end in ``mj_forward``).
        """
        mujoco.mj_step2(self.model, self.data)
        if self.substeps > 1:
            mujoco.mj_step(self.model, self.data, nstep=self.substeps - 1)
        mujoco.mj_step1(self.model, self.data)

    def _info(self, success: bool, extras: dict[str, Any]) -> dict[str, Any]:
        return {"success": bool(success), "behaviour": self.behaviour(), "context": self.context, **extras}

    # ----------------------------------------------------------------- replay
    def get_state(self) -> np.ndarray:
        """Everything the future depends on, as one float64 vector.

        Layout: MuJoCo's integration state (time, qpos, qvel, act, warm-start, ctrl, ...,
        ``mj_getState`` with ``mjSTATE_INTEGRATION``), then the controller's Cartesian
        target (3), the context id (1) and the task's progress (``task_state_size``).
        """
        physics = np.empty(self._state_size)
        mujoco.mj_getState(self.model, self.data, physics, _STATE_SPEC)
        return np.concatenate([physics, self.target_pos, [self.context], self._task_state()])

    @property
    def state_size(self) -> int:
        return self._state_size + 4 + self.task_state_size

    def reset_to(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Restore a ``get_state()`` vector exactly; returns the observation there.

        The vector is checked before any of it reaches the simulation: its length must be
        ``state_size``, every value finite, the context id an integer in
        ``[0, num_contexts)`` and the controller target inside ``TARGET_BOUNDS`` (a sanity
        box, x and y in [-1.5, 1.5] m and z in [-0.1, 1.5] m, that holds every task's
        clipped workspace with a wide margin).

        Raises:
            InvalidStateError: the first problem found; the simulation is left untouched.
                Valid states come from ``get_state()`` of the same task and version.
        """
        state = check_state(
            state,
            task=type(self).__name__,
            physics_size=self._state_size,
            state_size=self.state_size,
            num_contexts=self.num_contexts,
            target_bounds=TARGET_BOUNDS,
        )
        n = self._state_size
        mujoco.mj_setState(self.model, self.data, state[:n], _STATE_SPEC)
        self.target_pos = state[n : n + 3].copy()
        self.context = int(state[n + 3])
        self._set_task_state(state[n + 4 :])
        mujoco.mj_forward(self.model, self.data)
        # mj_forward overwrote the warm-start with this state's acceleration; restore it
        # so the next step starts the solver exactly where the recording did.
        mujoco.mj_setState(self.model, self.data, state[:n], _STATE_SPEC)
        return self._observe()

    # ----------------------------------------------------------------- observations
    def _compose_observation_space(self) -> gym.spaces.Dict:
        spaces: dict[str, gym.spaces.Space] = {}
        if "state" in self.obs_mode:
            spaces.update(self._observation_space().spaces)
        shape = (self.camera_height, self.camera_width, 3)
        for camera in self.cameras:  # names checked in __init__
            spaces[f"{camera}_image"] = gym.spaces.Box(0, 255, shape, np.uint8)
        return gym.spaces.Dict(spaces)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.model.camera(i).name for i in range(self.model.ncam))

    def _observe(self) -> dict[str, np.ndarray]:
        """The observation for ``obs_mode``: state keys and/or one image per camera."""
        obs = self._get_obs() if "state" in self.obs_mode else {}
        if self.cameras:
            if self._camera_renderer is None:
                self._camera_renderer = make_renderer(
                    self.model, self.camera_height, self.camera_width
                )
            for camera in self.cameras:
                self._camera_renderer.update_scene(self.data, camera=camera)
                obs[f"{camera}_image"] = self._camera_renderer.render()
        return obs

    # ----------------------------------------------------------------- rendering
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = make_renderer(self.model, self.render_height, self.render_width)
        self._renderer.update_scene(self.data, camera=self.render_camera)
        return self._renderer.render()

    def close(self) -> None:
        for name in ("_renderer", "_camera_renderer"):
            renderer = getattr(self, name, None)
            if renderer is not None:
                renderer.close()
                setattr(self, name, None)

    # Renderers hold GL contexts, which cannot be pickled or shared across processes.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None
        state["_camera_renderer"] = None
        for rebuilt in ("model", "data", "controller", "arm_ctrl", "measured_tip"):
            state[rebuilt] = None  # _build_simulation makes them again
        state["_sim_state"] = self.get_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        sim_state = state.pop("_sim_state")
        self.__dict__.update(state)
        self._build_simulation()
        self.reset_to(sim_state)

    def _build_simulation(self) -> None:
        """Compile the model; make its data, the controller, and views into the data."""
        self.model = mujoco.MjModel.from_xml_string(self._model_xml())
        self.model.opt.timestep = self.physics_timestep
        self.data = mujoco.MjData(self.model)
        self.arm = ArmIndices.from_model(self.model, "tip")
        self.controller = CartesianController(self.model, self.arm)
        # Views made once: MjData's attributes build a new array on every access, which
        # shows in a step that costs tens of microseconds. They live as long as the data.
        self.arm_ctrl = self.data.ctrl[:7]
        self.measured_tip = self.data.site_xpos[self.arm.site_id]  # live view, world (3,)


# --------------------------------------------------------------------- per-step helpers
# Shared by the tasks' _apply_action/_get_obs. They run every control step on a handful of
# scalars, where Python floats and ``math`` are several times faster than numpy calls.


def vector_spaces(sizes: dict[str, int]) -> gym.spaces.Dict:
    """A ``Dict`` of unbounded float32 vectors, one per key: ``{"tip_pos": 2, ...}``."""
    return gym.spaces.Dict(
        {key: gym.spaces.Box(-np.inf, np.inf, (size,), np.float32) for key, size in sizes.items()}
    )


def unit_action_space(size: int) -> gym.spaces.Box:
    """``Box(-1, 1, (size,), float32)``: every task's normalised action."""
    return gym.spaces.Box(-1.0, 1.0, (size,), np.float32)


def step_target(
    target_pos: np.ndarray,
    action: list[float],
    max_step: float,
    low: tuple[float, ...],
    high: tuple[float, ...],
) -> None:
    """``target_pos[:n] += max_step * action[:n]`` clipped to ``[low, high]``, in place.

    ``n = len(low)``; ``low``/``high`` are tuples of Python floats (numpy scalars would
    make the scalar ``min``/``max`` slower than the numpy call they replace).
    """
    n = len(low)
    current = target_pos[:n].tolist()
    for i in range(n):
        target_pos[i] = min(max(current[i] + max_step * action[i], low[i]), high[i])


def planar_pose_obs(qpos: np.ndarray, adr: int, symmetry: int = 4) -> np.ndarray:
    """(x, y, sin kθ, cos kθ) float32 of a free body whose qpos starts at ``adr``.

    θ is the yaw from the body's quaternion (w, x, y, z) assuming it stays upright; k is
    the body's rotational symmetry (4 for a cube), so symmetric poses give one feature.
    """
    x, y, _, w, _, _, z = qpos[adr : adr + 7].tolist()
    angle = symmetry * 2.0 * math.atan2(z, w)
    return np.array((x, y, math.sin(angle), math.cos(angle)), dtype=np.float32)
