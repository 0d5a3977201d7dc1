"""Learners, their registry, the one training loop and the one checkpoint format.

Importing this package registers every built-in learner, so ``policy_class(name)`` and
``load_checkpoint`` find them: the imitation learners ``bc_mlp``, ``bc_gmm``, ``bc_rnn``,
``bc_transformer``, ``bet``, ``diffusion``, ``diffusion_transformer``, and the offline-RL
learners ``iql``, ``cql``, ``td3_bc``, ``bcq`` (their shared parts: ``policies.offline_rl``).
"""

from polymimic.policies import (
    bc,  # noqa: F401  (registers "bc_mlp")
    bc_gmm,  # noqa: F401  (registers "bc_gmm")
    bc_rnn,  # noqa: F401  (registers "bc_rnn")
    bc_transformer,  # noqa: F401  (registers "bc_transformer")
    bcq,  # noqa: F401  (registers "bcq")
    bet,  # noqa: F401  (registers "bet")
    cql,  # noqa: F401  (registers "cql")
    diffusion,  # noqa: F401  (registers "diffusion")
    diffusion_transformer,  # noqa: F401  (registers "diffusion_transformer")
    iql,  # noqa: F401  (registers "iql")
    td3_bc,  # noqa: F401  (registers "td3_bc")
)
from polymimic.policies.base import (
    Policy,
    PolicyConfig,
    policy_class,
    register_policy,
    registered_policies,
)

__all__ = ["Policy", "PolicyConfig", "policy_class", "register_policy", "registered_policies"]
