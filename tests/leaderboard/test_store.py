"""The store: migrations shipped in the package equal the models, concurrent submissions
(threads and separate processes) are all stored, the verification queue hands each job to
one worker, and a job left running by a dead worker is reclaimed once its lease passes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from polymimic.leaderboard.bundle import read_bundle, submit
from polymimic.leaderboard.store import Base, Store


def test_migrations_run_from_the_package_and_match_the_models(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini here: the configuration is in the package
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert MigrationContext.configure(connection).get_current_revision() == "0002"
    assert {"submissions", "submission_files"} <= set(inspect(store.engine).get_table_names())
    Store(store.url)  # upgrading an up-to-date database is a no-op


def test_concurrent_submissions_are_all_stored(bundle_dir: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    bundle = read_bundle(bundle_dir)
    start = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def add() -> None:
        try:
            start.wait()
            for _ in range(3):
                ids.append(Store(store.url, upgrade=False).add(bundle))
        except BaseException as err:  # noqa: BLE001  (reported by the assertion below)
            errors.append(err)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(ids) == list(range(1, 13)) and store.count() == 12
    assert store.file_count() == 24
    # Two full submissions (read, check, store) at once, through submit().
    results: list[int] = []
    pair = [threading.Thread(target=lambda: results.append(submit(store, bundle_dir)))
            for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    assert len(results) == 2 and store.count() == 14


def test_each_queued_job_goes_to_exactly_one_worker(bundle_dir: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    bundle = read_bundle(bundle_dir)
    queued = {store.add(bundle) for _ in range(20)}
    claimed: list[int] = []
    start = threading.Barrier(4)

    def take(worker: str) -> None:
        start.wait()
        while (job := store.claim_next(worker, 3600)) is not None:
            claimed.append(job)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(queued)  # every job once, none twice
    assert {row.status for row in store.entries()} == {"running"}


def _submit_from_process(url: str, bundle_dir: Path, start, results, count: int) -> None:
    """One submitter process (module level: the spawn start method imports it by name)."""
    store = Store(url, upgrade=False)
    start.wait(timeout=120)  # both processes write at once
    results.put([submit(store, bundle_dir) for _ in range(count)])


def test_submissions_from_two_processes_at_once_are_all_stored(
    bundle_dir: Path, tmp_path: Path
) -> None:
    # Two processes, as two `polymimic leaderboard submit` commands or two server workers
    # would be: each has its own connections, and SQLite's file lock (not a Python lock)
    # must serialise their transactions.
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch
    start, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_submit_from_process,
                                 args=(store.url, bundle_dir, start, results, 3))
                 for _ in range(2)]
    for process in processes:
        process.start()
    ids = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(ids[0] + ids[1]) == list(range(1, 7))
    assert store.count() == 6 and store.file_count() == 12


def test_a_job_left_running_by_a_dead_worker_is_reclaimed_after_its_lease(
    bundle_dir: Path, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    job = store.add(read_bundle(bundle_dir))
    assert store.claim_next("dead", lease_s=0.3) == job  # then the worker dies
    assert store.claim_next("alive", lease_s=3600) is None  # its lease still holds
    time.sleep(0.4)
    assert store.claim_next("alive", lease_s=3600) == job
    row = store.get(job)
    assert row.status == "running" and row.worker == "alive"
    assert store.claim_next("third", lease_s=3600) is None  # the new lease holds
    # A worker that was only slow comes back after its lease: it no longer holds the job,
    # so nothing it reports is written.
    assert not store.record_failed(job, "late result", worker="dead")
    assert store.get(job).status == "running"
    assert store.record_failed(job, "the holder's result", worker="alive")
    row = store.get(job)
    assert row.status == "failed" and row.failure_reason == "the holder's result"
    assert row.lease_until is None
    assert store.claim_next("alive", lease_s=3600) is None  # finished jobs are not claimable
