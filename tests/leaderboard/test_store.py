"""The store: migrations shipped in the package equal the models, concurrent submissions
are all stored, and the verification queue hands each job to one worker."""

from __future__ import annotations

import threading
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
        assert MigrationContext.configure(connection).get_current_revision() == "0001"
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
        while (job := store.claim_next(worker)) is not None:
            claimed.append(job)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(queued)  # every job once, none twice
    assert {row.status for row in store.entries()} == {"running"}
