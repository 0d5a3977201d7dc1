"""polymimic's tasks, registered with Gymnasium on import.

Each id names one benchmark task; a breaking change gets a new ``-vN`` that shares the
base class rather than copying it.
"""

# The GL backend must be chosen before anything imports mujoco.
from polymimic.envs.rendering import configure_gl_backend, import_mujoco

configure_gl_backend()
import_mujoco()

import gymnasium  # noqa: E402

from polymimic.envs.push import PushEnv  # noqa: E402

TASK_IDS = ("polymimic/Push-v0",)

gymnasium.register(
    id="polymimic/Push-v0",
    entry_point="polymimic.envs.push:PushEnv",
    max_episode_steps=PushEnv.max_episode_steps,
)

__all__ = ["TASK_IDS", "PushEnv"]
