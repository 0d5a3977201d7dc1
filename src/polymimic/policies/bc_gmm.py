"""Behaviour cloning with a Gaussian-mixture head: robomimic's BC-GMM.

Mandlekar et al., "What Matters in Learning from Offline Human Demonstrations for Robot
Manipulation" (CoRL 2021) train BC on human data with a mixture density head (Bishop, 1994),
because people solve a task in several ways and an MSE regression averages the ways into an
action nobody took. The MLP trunk is ``bc_mlp``'s; its last layer parametrises a K-mode
Gaussian mixture with diagonal covariances over the normalised first action::

    p(a | o) = sum_k pi_k(o) N(a; mu_k(o), diag(sigma_k(o)^2)),
    sigma_k = softplus(s_k) + min_std,      loss = -log p(a | o)

(the math and the sampling rule live in ``policies.heads.GMMHead``, shared with ``bc_rnn``
and ``bc_transformer``). robomimic's defaults: 5 modes, min_std 1e-4, softplus. At inference
a mode is drawn from the mixture weights with the environment's generator; with
``low_noise_eval`` (default, as robomimic) the drawn mode's mean is returned up to a 1e-4
std, so the policy keeps choosing between the demonstrated ways instead of averaging them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polymimic.config.values import bounded
from polymimic.policies.base import register_policy
from polymimic.policies.bc import BCConfig, BCPolicy
from polymimic.policies.heads import MAX_GMM_MODES, GMMHead, GMMHeadConfig


@dataclasses.dataclass
class BCGMMConfig(GMMHeadConfig, BCConfig):
    """Configuration of :class:`BCGMMPolicy`: ``BCConfig``'s trunk plus the mixture fields."""

    gmm_modes: int = bounded(5, 1, MAX_GMM_MODES)  # mixture modes K (robomimic: 5); >= 1


# Named configs (``policy=bc_gmm/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # robomimic 0.3.0 config/bc_config.py: algo.actor_layer_dims = (1024, 1024)
        "hidden_dims": (1024, 1024),
        # robomimic scripts/generate_paper_configs.py, modify_bc_config_for_dataset: lr 1e-4
        # and gmm.enabled = True for the human (ph, mh) datasets
        "lr": 1e-4,
        # robomimic bc_config.py: optim_params.policy.regularization.L2 = 0.0
        "weight_decay": 0.0,
        "lr_schedule": "constant",  # multistep with an empty epoch_schedule: constant
        # robomimic bc_config.py: gmm.num_modes 5, gmm.min_std 1e-4, gmm.std_activation
        # softplus, gmm.low_noise_eval True
        "gmm_modes": 5,
        "gmm_min_std": 1e-4,
        "gmm_std_activation": "softplus",
        "low_noise_eval": True,
    },
    "cpu_small": {
        # bc_mlp's cpu_small trunk (256, 256) at lr 1e-3 (polymimic's BC settings, issue 17),
        # with robomimic's mixture settings
        "hidden_dims": (256, 256),
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "lr_schedule": "constant",
        "gmm_modes": 5,
        "gmm_min_std": 1e-4,
        "gmm_std_activation": "softplus",
        "low_noise_eval": True,
    },
}


@register_policy
class BCGMMPolicy(BCPolicy):
    """MLP behaviour cloning with a Gaussian-mixture head (stochastic at inference)."""

    name = "bc_gmm"
    config_class = BCGMMConfig
    presets = PRESETS

    def make_head(self, config: BCGMMConfig) -> GMMHead:  # type: ignore[override]
        """The K-mode mixture head the config describes."""
        return GMMHead(
            config.action_dim, config.gmm_modes, config.gmm_min_std,
            config.gmm_std_activation, config.low_noise_eval,
        )  # fmt: skip
