"""Verification: hidden contexts from the secret, the standard evaluation in a capped
subprocess, inflated claims flagged, over-cap jobs recorded as failed (issue 16)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

import polymimic.leaderboard.store as store_module
from polymimic.eval.protocol import SPLIT_SEED_START
from polymimic.leaderboard.bundle import submit
from polymimic.leaderboard.store import Store
from polymimic.leaderboard.verify import (
    HIDDEN_SEED_BASE,
    VerifyError,
    VerifySettings,
    hidden_seed_start,
    lease_seconds,
    load_secret,
    work,
)

SECRET = b"a test secret of 32 bytes-------"
#: Two hidden contexts, one rollout each: a few seconds per verification.
TINY = VerifySettings(contexts=2, rollouts=1, wall_s=300, cpu_s=300)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")


def claiming(bundle_dir: Path, tmp_path: Path, success: float) -> Path:
    path = Path(shutil.copytree(bundle_dir, tmp_path / f"claims_{success}"))
    document = json.loads((path / "submission.json").read_text())
    document["claimed_metrics"].update(success_rate=success, behaviour_entropy=None,
                                       conditional_behaviour_entropy=None)
    (path / "submission.json").write_text(json.dumps(document))
    return path


def test_hidden_contexts_come_from_the_secret_and_no_public_range() -> None:
    start = hidden_seed_start(SECRET, "polymimic/Push-v1")
    assert start == hidden_seed_start(SECRET, "polymimic/Push-v1")  # every worker agrees
    assert start != hidden_seed_start(SECRET + b"!", "polymimic/Push-v1")
    assert start != hidden_seed_start(SECRET, "polymimic/Align-v1")
    assert start >= HIDDEN_SEED_BASE > max(SPLIT_SEED_START.values()) + 100_000
    with pytest.raises(VerifyError, match="at least 16 bytes"):
        load_secret("short")


def test_inflated_claim_is_stored_with_its_verified_number_and_flagged(
    bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    # The tiny policy, trained 4 steps, succeeds on no hidden context; one bundle claims what
    # it measured on the public contexts (0), the other claims 0.95.
    honest = submit(store, claiming(bundle_dir, tmp_path, 0.0))
    inflated = submit(store, claiming(bundle_dir, tmp_path, 0.95))
    assert work(store, SECRET, TINY) == [(honest, "verified"), (inflated, "verified")]
    row = store.get(inflated)
    assert row.claimed_success == 0.95 and row.success_rate == 0.0 and row.num_episodes == 2
    assert row.success_ci_high < 0.95
    assert row.claim_flagged
    assert "claimed success rate 0.950 lies outside the verified 95% interval" in row.flag_reason
    assert not store.get(honest).claim_flagged
    info = json.loads(row.eval_info)
    assert info["protocol"]["name"] == "leaderboard-hidden" and "seed_start" not in info["protocol"]
    assert "seeds" not in info and all("seed" not in e for e in info["per_episode"])
    assert str(hidden_seed_start(SECRET, row.task)) not in row.eval_info


@pytest.mark.parametrize("cap, reason", [
    (VerifySettings(contexts=2, rollouts=1, wall_s=0.5), "exceeded the wall-clock cap of 0.5 s"),
    (VerifySettings(contexts=2, rollouts=1, cpu_s=1, wall_s=300), "exceeded the CPU-time cap"),
    # Far below what PyTorch and MuJoCo map: the child fails as soon as it loads them.
    (VerifySettings(contexts=2, rollouts=1, memory_bytes=300 << 20, wall_s=300),
     "exceeded the memory cap of 300 MiB"),
])
def test_verification_over_its_cap_is_stopped_and_recorded_failed(
    cap: VerifySettings, reason: str, bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    over = submit(store, bundle_dir)
    after = submit(store, bundle_dir)
    assert work(store, SECRET, cap, max_jobs=1) == [(over, "failed")]
    row = store.get(over)
    assert row.status == "failed" and reason in row.failure_reason
    assert row.success_rate is None
    # The worker and the store carry on: the next job is verified normally.
    assert work(store, SECRET, TINY) == [(after, "verified")]


def test_a_worker_takes_up_a_job_whose_worker_died(
    bundle_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = submit(store, bundle_dir)
    assert store.claim_next("dead-worker", lease_s=lease_seconds(TINY)) == job
    assert lease_seconds(TINY) > TINY.wall_s  # a live worker's child is killed before
    assert work(store, SECRET, TINY) == []  # the lease holds: nothing to do yet
    # Later than the lease: the dead worker's claim has expired.
    later = store_module._now() + dt.timedelta(seconds=lease_seconds(TINY) + 1)
    monkeypatch.setattr(store_module, "_now", lambda: later)
    assert work(store, SECRET, TINY, worker="alive") == [(job, "verified")]
    row = store.get(job)
    assert row.status == "verified" and row.worker == "alive" and row.num_episodes == 2
