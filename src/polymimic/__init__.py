"""polymimic: a benchmark for imitation learning from diverse, multi-operator demonstrations.

Importing the package registers every ``polymimic/*`` environment id with Gymnasium and
chooses a headless MuJoCo GL backend when the user has not set ``MUJOCO_GL`` (this only
takes effect if ``mujoco`` was not imported before ``polymimic``).
"""

from polymimic import envs  # noqa: F401  (sets the GL default, registers the gym ids)

__version__ = "0.1.0"
