"""polymimic's tasks, registered with Gymnasium on import.

Each id names one benchmark task; a breaking change gets a new ``-vN`` that shares the
base class rather than copying it. A task class carries its own id and time limit, so
registering it is one entry in ``TASK_CLASSES``.
"""

# The GL backend must be chosen before anything imports mujoco.
from polymimic.envs.rendering import configure_gl_backend, import_mujoco

configure_gl_backend()
import_mujoco()

import gymnasium  # noqa: E402

from polymimic.envs.align import AlignEnv  # noqa: E402
from polymimic.envs.avoid import AvoidEnv  # noqa: E402
from polymimic.envs.base import ArmTaskEnv  # noqa: E402
from polymimic.envs.push import PushEnv  # noqa: E402
from polymimic.envs.sort import Sort2Env, Sort4Env, Sort6Env  # noqa: E402
from polymimic.envs.stack import StackEnv  # noqa: E402

# --- task classes: one import above and one entry here per task ---
TASK_CLASSES: tuple[type[ArmTaskEnv], ...] = (
    PushEnv,
    Sort2Env, Sort4Env, Sort6Env,
    AvoidEnv,
    AlignEnv,
    StackEnv,
)

for _cls in TASK_CLASSES:
    gymnasium.register(
        id=_cls.task_id,
        entry_point=f"{_cls.__module__}:{_cls.__name__}",
        max_episode_steps=_cls.max_episode_steps,
    )

TASK_IDS: tuple[str, ...] = tuple(cls.task_id for cls in TASK_CLASSES)

__all__ = [
    "TASK_CLASSES",
    "TASK_IDS",
    "AlignEnv",
    "ArmTaskEnv",
    "AvoidEnv",
    "PushEnv",
    "Sort2Env",
    "Sort4Env",
    "Sort6Env",
    "StackEnv",
]
