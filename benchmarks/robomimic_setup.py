"""robomimic 0.3.0 set up as polymimic's cross-checks use it, shared by
``benchmarks/train_throughput.py`` (training speed) and ``scripts/robomimic_crosscheck.py``
(success and loss curves).

* :func:`torchvision_stand_in`: robomimic's algorithms import torchvision at module level
  for image encoders that low-dimensional runs never build; robomimic is installed with
  ``--no-deps``, so a minimal stand-in module goes into ``sys.modules`` before
  ``robomimic.algo`` is imported. Only these scripts do this, never the package.
* :func:`make_config`: robomimic's own config (``config_factory``) with the sizes of
  polymimic's ``cpu_small`` presets: ``mlp`` = robomimic ``BC`` (``actor_layer_dims=(256,
  256)``, lr 1e-3, no GMM, ``seq_length=1``); ``rnn`` = ``BC_RNN`` (LSTM 2x128,
  ``horizon=10``, 5-mode GMM, ``actor_layer_dims=()``, lr 1e-3, ``seq_length=10``); and the
  offline-RL algorithms of ``train_throughput.py`` (its docstring says which sizes).
* :func:`standardised_dataset`: robomimic's ``SequenceDataset`` (``hdf5_cache_mode="all"``)
  whose cached observations are standardised in place, once, with the mean and std of the
  selected (``filter_by_attribute``) demos before its item cache is built.
  ``hdf5_normalize_obs`` stays off: in 0.3.0 it fails a shape assertion and, patched,
  normalises twice (robomimic PR #81). The statistics are kept on the dataset as
  ``standardisation_stats`` (robomimic's format: ``{key: {"mean", "std"}}`` of shape
  ``(1, dim)``), so a rollout standardises with exactly the training statistics; not as
  robomimic's own ``obs_normalization_stats``, which belongs to ``hdf5_normalize_obs``
  (``get_item`` normalises with it when that flag is on).
* :func:`make_algo`, :func:`data_loader`: ``algo_factory`` on CPU with the dataset's shapes;
  robomimic's own ``DataLoader(shuffle=True, drop_last=True)``.

Every function imports robomimic and torch itself: importing this module costs nothing.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

#: polymimic-side model name -> robomimic algorithm name (``algo_factory``)
ALGOS = {"mlp": "bc", "rnn": "bc", "iql": "iql", "cql": "cql", "bcq": "bcq"}
OFFLINE_RL = ("iql", "cql", "bcq")
SEQ_RNN = 10


def _stand_in(name: str) -> types.ModuleType:
    """An empty module with a spec: ``importlib.util.find_spec`` then answers for it instead
    of raising (diffusers probes torchvision that way, then finds no distribution and treats
    it as absent)."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def torchvision_stand_in() -> None:
    """A module tree that satisfies robomimic 0.3.0's module-level torchvision imports."""
    if "torchvision" in sys.modules:
        return
    root, transforms, functional, models = (
        _stand_in(name) for name in ("torchvision", "torchvision.transforms",
                                     "torchvision.transforms.functional", "torchvision.models")
    )  # fmt: skip

    class _Unavailable:  # Lambda, Compose, ...: only image pipelines would build them
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("torchvision stand-in: image models are not benchmarked")

    transforms.Lambda = transforms.Compose = _Unavailable
    transforms.functional = functional
    root.transforms, root.models = transforms, models
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional,
                        "torchvision.models": models})  # fmt: skip


def offline_rl_sizes(config: Any, model: str, action_dim: int) -> None:
    """The sizes matched to polymimic's ``cpu_small`` (train_throughput.py), set in ``config``."""
    algo = config.algo
    algo.critic.layer_dims = (256, 256)
    algo.critic.ensemble.n = 2
    algo.actor.layer_dims = (256, 256)
    if model == "cql":
        algo.critic.num_random_actions = 10
        algo.critic.num_action_samples = 1
        algo.critic.target_q_gap = None  # a fixed CQL weight, not the Lagrange variant
    elif model == "bcq":
        algo.actor.enabled = True  # the perturbation network of the paper's BCQ
        algo.critic.num_action_samples = 10
        algo.critic.ensemble.weight = 0.75
        vae = algo.action_sampler.vae
        vae.encoder_layer_dims = vae.decoder_layer_dims = (256, 256)
        vae.latent_dim = 2 * action_dim
        vae.latent_clip = 0.5
        vae.kl_weight = 0.5


def make_config(
    model: str, obs_keys: Sequence[str], batch_size: int, action_dim: int
) -> tuple[Any, int]:
    """robomimic's config of ``model`` (``ALGOS``) at polymimic's ``cpu_small`` sizes, and
    its ``train.seq_length``; robomimic's observation utilities are initialised from it."""
    torchvision_stand_in()
    from robomimic.config import config_factory
    from robomimic.utils import obs_utils

    config = config_factory(ALGOS[model])
    with config.values_unlocked():
        config.observation.modalities.obs.low_dim = list(obs_keys)
        config.train.batch_size = batch_size
        seq = 1
        if model in OFFLINE_RL:
            offline_rl_sizes(config, model, action_dim)
        else:
            config.algo.optim_params.policy.learning_rate.initial = 1e-3
        if model == "mlp":
            config.algo.actor_layer_dims = (256, 256)
            config.algo.gmm.enabled = False
        elif model == "rnn":
            config.algo.actor_layer_dims = ()
            config.algo.rnn.enabled = True
            config.algo.rnn.horizon = SEQ_RNN
            config.algo.rnn.hidden_dim = 128
            config.algo.rnn.num_layers = 2
            config.algo.gmm.enabled = True
            config.algo.gmm.num_modes = 5
            seq = SEQ_RNN
        config.train.seq_length = seq
    obs_utils.initialize_obs_utils_with_config(config)
    return config, seq


def standardised_dataset(
    path: str,
    obs_keys: Sequence[str],
    seq_length: int,
    filter_key: str | None,
    offline_rl: bool = False,
) -> Any:
    """robomimic's ``SequenceDataset`` of the ``filter_key`` demos, observations standardised
    once with their own mean and std (kept as ``dataset.standardisation_stats``)."""
    import numpy as np
    from robomimic.utils.dataset import SequenceDataset

    class StandardisedOnce(SequenceDataset):
        """Standardise the cached observations in place, before the item cache is built."""

        def load_dataset_in_memory(self, demo_list, hdf5_file, obs_keys, dataset_keys,
                                   load_next_obs):  # fmt: skip
            cache = super().load_dataset_in_memory(demo_list, hdf5_file, obs_keys,
                                                   dataset_keys, load_next_obs)  # fmt: skip
            self.standardisation_stats = {}  # not obs_normalization_stats: see the docstring
            for key in obs_keys:
                values = np.concatenate([cache[d]["obs"][key] for d in demo_list]).astype(np.float64)
                mean, std = values.mean(axis=0), values.std(axis=0)
                std = np.where(std < 1e-6, 1.0, std)  # polymimic's Normalizer guards the same
                self.standardisation_stats[key] = {"mean": mean[None], "std": std[None]}
                for demo in demo_list:
                    for part in ("obs", "next_obs") if load_next_obs else ("obs",):
                        raw = cache[demo][part][key]
                        cache[demo][part][key] = ((raw - mean) / std).astype(np.float32)
            return cache

    keys = ("actions", "rewards", "dones") if offline_rl else ("actions",)
    return StandardisedOnce(
        hdf5_path=path, obs_keys=tuple(obs_keys), dataset_keys=keys, load_next_obs=offline_rl,
        frame_stack=1, seq_length=seq_length, pad_frame_stack=True, pad_seq_length=True,
        get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all", hdf5_use_swmr=True,
        hdf5_normalize_obs=False, filter_by_attribute=filter_key,
    )  # fmt: skip


def make_algo(model: str, config: Any, dataset: Any, obs_keys: Sequence[str]) -> Any:
    """robomimic's algorithm object (``algo_factory``) on CPU, sized from the dataset."""
    torchvision_stand_in()
    import torch
    from robomimic.algo import algo_factory

    item = dataset[0]
    shapes = {k: item["obs"][k].shape[1:] for k in obs_keys}
    return algo_factory(ALGOS[model], config, obs_key_shapes=shapes,
                        ac_dim=item["actions"].shape[-1], device=torch.device("cpu"))  # fmt: skip


def data_loader(dataset: Any, batch_size: int) -> Any:
    """robomimic's training loader: shuffled batches, the last partial batch dropped."""
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)


def robomimic_version() -> str | None:
    """The installed robomimic version (None if it is not installed)."""
    try:
        from importlib.metadata import version

        return version("robomimic")
    except Exception:  # noqa: BLE001 - recorded as unknown
        return None
