"""BeT: k-means bins fitted by the training loop (deterministic for a seed, saved, restored,
not refitted on resume), the focal loss, and bins drawn with the environment's generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional

from demo_files import write_demo_file
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.bet import BeTConfig, BeTPolicy, focal_loss, kmeans
from polymimic.policies.checkpoint import load_checkpoint, save_checkpoint
from polymimic.policies.train import TrainConfig, train

# Actions around three well-separated 2-D points, in unequal shares, in raw units.
CLUSTERS = np.array([[2.0, -1.0], [-3.0, 0.5], [0.5, 4.0]])
SHARES = (0.5, 0.3, 0.2)


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    demos = {}
    for i in range(12):
        which = rng.choice(3, size=30, p=SHARES)
        actions = CLUSTERS[which] + 0.05 * rng.normal(size=(30, 2))
        demos[f"demo_{i}"] = {"obs/x": rng.normal(size=(30, 3)), "actions": actions}
    return write_demo_file(tmp_path_factory.mktemp("bet") / "clusters.hdf5", demos,
                           {"train": list(demos)})  # fmt: skip


def build(path: Path, **values: Any) -> tuple[BeTPolicy, WindowDataset]:
    config = BeTConfig(**{"obs_keys": ("x",), "obs_dim": 3, "action_dim": 2, "obs_horizon": 2,
                          "n_bins": 3, "n_layer": 1, "n_head": 2, "n_embd": 16, **values})  # fmt: skip
    torch.manual_seed(0)
    policy = BeTPolicy(config)
    dataset = WindowDataset(path, ("x",), spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    return policy, dataset


def raw_centres(policy: BeTPolicy) -> np.ndarray:
    """The bins in raw action units, sorted by their first coordinate."""
    centres = policy.unnormalize_action(policy.bin_centers).numpy()
    return centres[np.argsort(centres[:, 0])]


def train_steps(policy: BeTPolicy, dataset: Any, run_dir: Path, steps: int, seed: int = 0,
                resume: bool = False) -> None:  # fmt: skip
    cfg = TrainConfig(num_steps=steps, batch_size=32, log_every=1, save_every=2, seed=seed,
                      device="cpu", progress_bar=False, resume=resume)  # fmt: skip
    train(policy, dataset, cfg, run_dir)


def test_kmeans_bins_are_fitted_by_the_loop_saved_and_restored(cluster_file: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    policy, dataset = build(cluster_file)
    with pytest.raises(RuntimeError, match="not fitted"):
        policy.compute_loss(dataset.get_batch(np.arange(4)))
    train_steps(policy, dataset, tmp_path / "run", steps=2)
    assert bool(policy.bins_fitted)
    # The bins found the three clusters (the noise is 0.05; the means of ~100 points each).
    np.testing.assert_allclose(raw_centres(policy), CLUSTERS[np.argsort(CLUSTERS[:, 0])], atol=0.03)
    save_checkpoint(policy, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(loaded.bin_centers, policy.bin_centers) and bool(loaded.bins_fitted)
    window = torch.from_numpy(np.stack([dataset.obs[:4], dataset.obs[1:5]], axis=1))
    gens = [[torch.Generator().manual_seed(i) for i in range(4)] for _ in range(2)]
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_chunk(window, gens[0]),
                                   policy.eval().predict_chunk(window, gens[1]), rtol=0, atol=0)  # fmt: skip


def test_kmeans_is_deterministic_for_a_seed(cluster_file: Path) -> None:
    """Same data and seed: identical bins; another seed starts elsewhere (k > clusters, so
    Lloyd's iterations end in a different split)."""
    fits = {}
    for seed in (0, 0, 1):
        policy, dataset = build(cluster_file, n_bins=8)
        policy.fit_to_data(dataset, seed=seed)
        fits.setdefault(seed, []).append(policy.bin_centers.clone())
    assert torch.equal(fits[0][0], fits[0][1])
    assert not torch.equal(fits[0][0], fits[1][0])
    # The fit does not touch the global RNG (a resumed run replays it).
    state = torch.get_rng_state()
    policy.fit_to_data(dataset, seed=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_resume_keeps_the_fitted_bins(cluster_file: Path, tmp_path: Path) -> None:
    """A resumed run restores its bins from the checkpoint and never refits them."""
    policy, dataset = build(cluster_file, n_bins=8)
    train_steps(policy, dataset, tmp_path / "run", steps=2, seed=5)
    fresh, _ = build(cluster_file, n_bins=8)

    def refit(*args: Any) -> None:
        raise AssertionError("fit_to_data called on a resume")

    fresh.fit_to_data = refit  # type: ignore[method-assign]
    train_steps(fresh, dataset, tmp_path / "run", steps=4, seed=5, resume=True)
    assert torch.equal(fresh.bin_centers, policy.bin_centers)


def test_kmeans_handles_fewer_distinct_points_than_bins() -> None:
    points = torch.tensor([[-1.0], [1.0], [0.5]]).repeat(20, 1)
    centres = kmeans(points, 8, 20, torch.Generator().manual_seed(0))
    assert centres.shape == (8, 1) and torch.isfinite(centres).all()
    assert set(centres[:, 0].tolist()) == {-1.0, 1.0, 0.5}  # every point value is a bin


def test_focal_loss_is_the_formula() -> None:
    logits, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    torch.testing.assert_close(focal_loss(logits, target, 0.0), functional.cross_entropy(logits, target))
    p = torch.softmax(logits, -1)[torch.arange(6), target]
    torch.testing.assert_close(focal_loss(logits, target, 2.0), (-(1 - p) ** 2 * p.log()).mean())


def test_bins_are_drawn_from_the_softmax(cluster_file: Path) -> None:
    """Bin shares follow softmax(logits / temperature), drawn per row with its generator."""
    policy, dataset = build(cluster_file, temperature=2.0)
    policy.fit_to_data(dataset, seed=0)
    with torch.no_grad():
        policy.output_ln.weight.zero_()  # the last features are all 1 whatever the input,
        policy.output_ln.bias.fill_(1.0)
        policy.head.weight.zero_()  # so every logit and offset is 0, except bin 0's logit:
        policy.head.weight[0, 0] = 2.0 * float(np.log(3.0))  # / temperature 2 = log 3
    # p = softmax(log 3, 0, 0) = (3/5, 1/5, 1/5)
    obs = np.repeat(dataset.obs[:1], 3000, axis=0)
    gens = [torch.Generator().manual_seed(i) for i in range(3000)]
    actions = policy.eval().predict_action(obs, gens)
    centres = policy.unnormalize_action(policy.bin_centers).numpy()
    chosen = np.argmin(((actions[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    shares = np.bincount(chosen, minlength=3) / len(chosen)
    np.testing.assert_allclose(shares, [0.6, 0.2, 0.2], atol=0.03)  # 3000 draws: sd < 0.01
