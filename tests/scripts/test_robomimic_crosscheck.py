"""``scripts/robomimic_crosscheck.py``: robomimic 0.3.0's BC / BC-RNN beside polymimic's bc_mlp
/ bc_rnn. The adapter is checked against hand-standardised observations (a wrong adapter,
one that skips, repeats or misorders the standardisation or keeps BC-RNN's hidden state
across episodes, fails), then the script runs end to end on tiny settings: BC-RNN, 20 steps
each side, 1 context x 1 rollout, episodes capped at 25 steps through the dataset's env args.
The end-to-end run takes the one learner whose pair differs most (recurrent state, mixture
head, raw-unit loss conversion): the polymimic side's two CLI subprocesses dominate its time,
and BC's pair runs the same code with another learner name (BC's robomimic side and adapter
are checked above).

robomimic is installed with ``--no-deps`` (``make test``); without it these tests skip.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("robomimic")  # its package only: robomimic.algo needs the stand-in first
pytest.importorskip("matplotlib")
torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "robomimic_crosscheck.py"
CAP = 25  # max_episode_steps of the test's env


@pytest.fixture(scope="module", autouse=True)
def _no_stand_in_afterwards():
    """The script puts a torchvision stand-in into sys.modules: take it out after this module,
    so no later test in the session sees it."""
    before = {name for name in sys.modules if name.split(".")[0] == "torchvision"}
    yield
    for name in [n for n in sys.modules if n.split(".")[0] == "torchvision" and n not in before]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def crosscheck():
    spec = importlib.util.spec_from_file_location("robomimic_crosscheck", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def capped_data(tiny_push_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Push file, its env args asking for episodes of at most CAP steps."""
    path = Path(shutil.copy(tiny_push_dataset, tmp_path_factory.mktemp("xcheck") / "push.hdf5"))
    with h5py.File(path, "a") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        env_args["env_kwargs"] = {**env_args.get("env_kwargs", {}), "max_episode_steps": CAP}
        f["data"].attrs["env_args"] = json.dumps(env_args)
    return path


def _train(crosscheck, path: Path, learner: str, tmp_path: Path):
    from polymimic.datasets.windows import dataset_dims

    obs_keys, _, action_dim = dataset_dims(path)
    algo, _, dataset, curve, _ = crosscheck.train_robomimic(
        learner, path, "train", obs_keys, action_dim, steps=2, batch_size=16, log_every=1,
        seed=0, log_path=tmp_path / "log.jsonl",
    )  # fmt: skip
    stats = dataset.standardisation_stats
    widths = {k: int(stats[k]["mean"].shape[-1]) for k in obs_keys}
    policy = crosscheck.RobomimicPolicy(algo, stats, obs_keys, widths, action_dim)
    return algo, dataset, policy, obs_keys, widths


def _raw_rows(path: Path, obs_keys, count: int) -> np.ndarray:
    """The first observations of a demo as polymimic's flat rows (keys in obs_keys order)."""
    with h5py.File(path, "r") as f:
        obs = f["data/demo_0/obs"]
        return np.concatenate([obs[k][:count] for k in obs_keys], axis=1).astype(np.float32)


def _standardised(row: np.ndarray, obs_keys, widths, stats) -> dict:
    """What robomimic's network must see: each key as (1, dim), (raw - mean) / std."""
    out, start = {}, 0
    for key in obs_keys:
        raw = row[start : start + widths[key]].astype(np.float64)
        start += widths[key]
        value = (raw - stats[key]["mean"][0]) / stats[key]["std"][0]
        out[key] = torch.as_tensor(value, dtype=torch.float32)[None]
    return out


def test_adapter_passes_once_standardised_obs(crosscheck, capped_data: Path, tmp_path: Path) -> None:
    from polymimic.datasets.windows import WindowDataset

    algo, dataset, policy, obs_keys, widths = _train(crosscheck, capped_data, "bc", tmp_path)
    stats = dataset.standardisation_stats
    # The statistics are polymimic's: its normaliser's mean/std of the same mask's steps.
    reference = WindowDataset(capped_data, obs_keys, "train").stats()["obs"]
    mean = np.concatenate([stats[k]["mean"][0] for k in obs_keys])
    std = np.concatenate([stats[k]["std"][0] for k in obs_keys])
    np.testing.assert_allclose(mean, reference["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, reference["std"], rtol=1e-5, atol=1e-6)
    # Training items are standardised once (robomimic's own normalisation stays off).
    rows = _raw_rows(capped_data, obs_keys, 3)
    item = dataset[0]["obs"]  # seq_length 1: demo_0's first step
    expected = _standardised(rows[0], obs_keys, widths, stats)
    for key in obs_keys:
        np.testing.assert_allclose(item[key][0], expected[key][0].numpy(), rtol=1e-5, atol=1e-5)

    # The adapter's action is robomimic's action on the standardised observation.
    algo.set_eval()
    for row in rows:
        with torch.no_grad():
            want = algo.get_action(_standardised(row, obs_keys, widths, stats))[0].numpy()
        policy.reset([0])
        got = policy.predict_action(row[None])
        assert got.shape == (1, len(want)) and got.dtype == np.float64
        np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
        # ... which raw or twice-standardised observations would not give.
        raw = {k: v * torch.as_tensor(stats[k]["std"], dtype=torch.float32)
               + torch.as_tensor(stats[k]["mean"], dtype=torch.float32)
               for k, v in _standardised(row, obs_keys, widths, stats).items()}  # fmt: skip
        twice = {k: (v - torch.as_tensor(stats[k]["mean"], dtype=torch.float32))
                 / torch.as_tensor(stats[k]["std"], dtype=torch.float32)
                 for k, v in _standardised(row, obs_keys, widths, stats).items()}  # fmt: skip
        with torch.no_grad():
            for wrong in (raw, twice):
                assert not np.allclose(got[0], algo.get_action(wrong)[0].numpy(), atol=1e-4)

    # A constant-action model: the adapter returns its action, clipped to [-1, 1].
    original = algo.get_action
    algo.get_action = lambda obs_dict, goal_dict=None: torch.tensor([[0.25, -0.5]])
    np.testing.assert_array_equal(policy.predict_action(rows[:1]), [[0.25, -0.5]])
    algo.get_action = lambda obs_dict, goal_dict=None: torch.tensor([[3.0, -2.0]])
    np.testing.assert_array_equal(policy.predict_action(rows[:1]), [[1.0, -1.0]])
    algo.get_action = original
    with pytest.raises(ValueError, match="one environment at a time"):
        policy.predict_action(rows[:2])


def test_adapter_resets_bc_rnn_state_per_episode(crosscheck, capped_data: Path, tmp_path: Path) -> None:
    algo, dataset, policy, obs_keys, widths = _train(crosscheck, capped_data, "bc_rnn", tmp_path)
    stats = dataset.standardisation_stats
    rows = _raw_rows(capped_data, obs_keys, 4)

    def episode(seed: int, reset: bool = True) -> np.ndarray:
        if reset:
            policy.reset([0])
        generator = torch.Generator().manual_seed(seed)
        return np.concatenate([policy.predict_action(r[None], [generator]) for r in rows])

    first = episode(7)
    np.testing.assert_array_equal(episode(7), first)  # reset + same rollout seed: same actions
    assert not np.array_equal(episode(7, reset=False), first)  # a carried-over LSTM state
    # Without generators the adapter draws from torch's global stream, as robomimic's own
    # RolloutPolicy would: the same actions as robomimic's algorithm stepped by hand.
    torch.manual_seed(3)
    policy.reset([0])
    got = np.concatenate([policy.predict_action(r[None]) for r in rows])
    torch.manual_seed(3)
    algo.set_eval()
    algo.reset()
    with torch.no_grad():
        want = np.concatenate([
            algo.get_action(_standardised(r, obs_keys, widths, stats)).numpy() for r in rows
        ])  # fmt: skip
    np.testing.assert_allclose(got, np.clip(want, -1, 1), rtol=1e-5, atol=1e-6)


def test_crosscheck_end_to_end(crosscheck, capped_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "results" / "xcheck.json"
    work = tmp_path / "work"
    argv = [
        "--dataset", str(capped_data), "--mask", "better_train", "--learners", "bc_rnn",
        "--steps", "20", "--log-every", "10", "--batch-size", "32", "--protocol", "cpu",
        "--contexts", "1", "--rollouts", "1", "--seed", "0", "--out", str(out),
        "--work-dir", str(work),
    ]  # fmt: skip
    assert crosscheck.main(argv) == 0
    document = json.loads(out.read_text())
    assert document["settings"]["mask"] == "better_train" and document["dataset"]["demos"] >= 1
    assert document["versions"]["robomimic"] == "0.3.0"
    assert set(document["learners"]) == {"bc_rnn"}
    algos = {"bc": "BC", "bc_rnn": "BC_RNN_GMM"}
    for learner, sides in document["learners"].items():
        assert set(sides) == {"robomimic", "polymimic"}
        for record in sides.values():
            assert record["steps"] == 20
            assert [p["step"] for p in record["loss_curve"]] == [10, 20]
            assert all(math.isfinite(p["loss"]) for p in record["loss_curve"])
            assert record["episodes"] == 1 and record["successes"] in (0, 1)
            low, high = record["interval"]
            assert 0.0 <= low <= record["success"] <= high <= 1.0
            assert record["protocol"]["num_contexts"] == 1
            assert record["protocol"]["rollouts_per_context"] == 1
            info = json.loads(Path(record["eval_info"]).read_text())
            assert all(e["length"] <= CAP for e in info["per_episode"])
            assert info["protocol"]["contexts_sha256"]
            assert record["config"] and record["versions"]["torch"]
        rm, pm = sides["robomimic"], sides["polymimic"]
        assert rm["algo"] == algos[learner] and rm["versions"]["robomimic"] == "0.3.0"
        assert pm["learner"] == crosscheck.LEARNERS[learner]["polymimic"]
        assert pm["config"]["policy"]["preset"] == "cpu_small"
        assert pm["config"]["filter_key"] == "better_train" and pm["config"]["seed"] == 0
        assert pm["config"]["train"]["batch_size"] == rm["config"]["train"]["batch_size"] == 32
        assert [c.split()[1] for c in pm["commands"]] == ["train", "eval"]
        # Same contexts, same rollout seeds on both sides.
        seeds = [json.loads(Path(r["eval_info"]).read_text())["seeds"] for r in (rm, pm)]
        assert seeds[0] == seeds[1]
    rnn = document["learners"]["bc_rnn"]["polymimic"]
    assert [p["loss"] for p in rnn["loss_curve_raw_actions"]] == pytest.approx(
        [p["loss"] + rnn["nll_offset_to_raw_actions"] for p in rnn["loss_curve"]]
    )
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = [json.loads(x) for x in (work / "robomimic_bc_rnn" / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [10, 20]

    # A rerun with the same settings keeps every side: nothing is trained or evaluated again.
    commands = (work / "polymimic_bc_rnn" / "commands.txt").read_text()
    assert crosscheck.main(argv) == 0
    assert json.loads(out.read_text())["learners"] == document["learners"]
    assert (work / "polymimic_bc_rnn" / "commands.txt").read_text() == commands
