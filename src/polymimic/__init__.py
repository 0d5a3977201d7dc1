"""polymimic: a benchmark for imitation learning from diverse, multi-operator demonstrations.

Importing the package registers every ``polymimic/*`` environment id with Gymnasium and
chooses a headless MuJoCo GL backend when the user has not set ``MUJOCO_GL``.
"""

from polymimic.envs.rendering import configure_gl_backend

configure_gl_backend()

from polymimic import envs  # noqa: E402,F401  (registers the gym ids)

__version__ = "0.1.0"
