"""Learners, their registry, the one training loop and the one checkpoint format.

Importing this package registers every built-in learner (``bc_mlp``, ``bc_gmm``,
``bc_rnn``, ``bc_transformer``, ``bet``, ``diffusion``, ``diffusion_transformer``), so
``policy_class(name)`` and ``load_checkpoint`` find them.
"""

from polymimic.policies import (
    bc,  # noqa: F401  (registers "bc_mlp")
    bc_gmm,  # noqa: F401  (registers "bc_gmm")
    bc_rnn,  # noqa: F401  (registers "bc_rnn")
    bc_transformer,  # noqa: F401  (registers "bc_transformer")
    bet,  # noqa: F401  (registers "bet")
    diffusion,  # noqa: F401  (registers "diffusion")
    diffusion_transformer,  # noqa: F401  (registers "diffusion_transformer")
)
from polymimic.policies.base import (
    Policy,
    PolicyConfig,
    policy_class,
    register_policy,
    registered_policies,
)

__all__ = ["Policy", "PolicyConfig", "policy_class", "register_policy", "registered_policies"]
