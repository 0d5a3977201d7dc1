"""Learners, their registry, the one training loop and the one checkpoint format.

Importing this package registers every built-in learner (``bc_mlp``, ...), so
``policy_class(name)`` and ``load_checkpoint`` find them.
"""

from polymimic.policies import bc  # noqa: F401  (registers "bc_mlp")
from polymimic.policies.base import (
    Policy,
    PolicyConfig,
    policy_class,
    register_policy,
    registered_policies,
)

__all__ = ["Policy", "PolicyConfig", "policy_class", "register_policy", "registered_policies"]
