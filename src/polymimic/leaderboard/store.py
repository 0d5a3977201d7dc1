"""The leaderboard's database: SQLAlchemy 2 tables, SQLite by default, any database URL.

Two tables. ``submissions`` holds one row per accepted bundle: what the submitter declared
(name, task, dataset, claimed metrics, the normalised ``submission.json``), the queue state
(``pending`` -> ``running`` -> ``verified`` | ``failed``) and the verified numbers with their
intervals and the claim flag. ``submission_files`` holds the bundle's ``config.json`` and
``model.safetensors`` bytes: keeping them in the database (bundles are at most 64 MiB)
makes an accepted submission one transaction, so a refused or interrupted upload leaves
nothing behind, and a shared deployment needs no shared file system beside its database.

The schema is versioned with Alembic; the migrations ship inside the package
(``leaderboard/migrations``) and run programmatically from :meth:`Store.upgrade`, so no
``alembic.ini`` is needed in the working directory. A test checks that the migrated schema
equals these models.

Concurrency: every write is one short transaction. On SQLite the connection waits for the
write lock (``busy_timeout``) instead of failing, and WAL journaling lets readers (the web
page) read while a submission is written. The verification queue is claimed with a
compare-and-set ``UPDATE ... WHERE status = 'pending'``, which is atomic on SQLite and
PostgreSQL alike, so two workers never take the same job.

A claim is a lease: it sets ``lease_until`` (the verification's wall-clock cap plus a margin,
``verify.lease_seconds``). A worker that dies mid-job leaves its row ``running``; once the
lease has passed, ``claim_next`` hands the row to another worker. The results of a worker
that only overran its lease are recorded only while it still holds the job (``record_*``
with ``worker``), so a reclaimed job is never written by two workers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from polymimic.errors import UserError
from polymimic.leaderboard import DEFAULT_URL

STATUSES = ("pending", "running", "verified", "failed")
_SQLITE_BUSY_MS = 30_000


class StoreError(UserError):
    """A database URL that cannot be opened, or an entry that does not exist."""


class Base(DeclarativeBase):
    pass


class Submission(Base):
    """One accepted bundle: the declared, the queue state, and the verified numbers."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(80), index=True)
    policy_type: Mapped[str] = mapped_column(String(80))
    dataset_id: Mapped[str] = mapped_column(String(200))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    fixed_data: Mapped[str | None] = mapped_column(String(200))
    claimed_success: Mapped[float] = mapped_column(Float)
    claimed_entropy: Mapped[float | None] = mapped_column(Float)
    claimed_conditional_entropy: Mapped[float | None] = mapped_column(Float)
    document: Mapped[str] = mapped_column(Text)  # the normalised submission.json
    env_kwargs: Mapped[str] = mapped_column(Text)  # JSON, checked by the allowlist
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    worker: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    success_rate: Mapped[float | None] = mapped_column(Float)
    success_ci_low: Mapped[float | None] = mapped_column(Float)
    success_ci_high: Mapped[float | None] = mapped_column(Float)
    behaviour_entropy: Mapped[float | None] = mapped_column(Float)
    behaviour_entropy_ci_low: Mapped[float | None] = mapped_column(Float)
    behaviour_entropy_ci_high: Mapped[float | None] = mapped_column(Float)
    conditional_entropy: Mapped[float | None] = mapped_column(Float)
    conditional_entropy_ci_low: Mapped[float | None] = mapped_column(Float)
    conditional_entropy_ci_high: Mapped[float | None] = mapped_column(Float)
    d3il_score: Mapped[float | None] = mapped_column(Float)
    num_episodes: Mapped[int | None] = mapped_column(Integer)
    claim_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text)
    eval_info: Mapped[str | None] = mapped_column(Text)  # redacted: no hidden seeds

    @property
    def submission(self) -> dict[str, Any]:
        return json.loads(self.document)


class SubmissionFile(Base):
    """A bundle's ``config.json`` or ``model.safetensors``, by submission."""

    __tablename__ = "submission_files"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")  # wait for the lock, do not fail
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and cross-thread use."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False,
                                                      "timeout": _SQLITE_BUSY_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except Exception as err:  # noqa: BLE001  (URL parsing and driver imports raise many types)
        raise StoreError(f"cannot open database {url!r}: {err}. Pass a SQLAlchemy URL such as "
                         "sqlite:///leaderboard.db or postgresql+psycopg://user@host/db") from None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Run the package's Alembic migrations up to ``revision`` on ``engine``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("polymimic.leaderboard") / "migrations")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class Store:
    """The leaderboard's submissions in one database.

    Args:
        url: a SQLAlchemy database URL (default: ``leaderboard.db`` in the working directory).
        upgrade: run the migrations to the newest schema first.
    """

    def __init__(self, url: str = DEFAULT_URL, upgrade: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if upgrade:
            migrate(self.engine)

    def session(self) -> Session:
        return self._sessions()

    def add(self, bundle: Any) -> int:
        """Store a checked :class:`bundle.Bundle` (one transaction); return its id."""
        document, claims = bundle.submission, bundle.submission["claimed_metrics"]
        row = Submission(
            name=document["name"], task=document["task"], policy_type=document["policy_type"],
            dataset_id=document["dataset"]["id"], dataset_sha256=document["dataset"]["sha256"],
            fixed_data=bundle.fixed_data, claimed_success=claims["success_rate"],
            claimed_entropy=claims["behaviour_entropy"],
            claimed_conditional_entropy=claims["conditional_behaviour_entropy"],
            document=json.dumps(document, sort_keys=True, allow_nan=False),
            env_kwargs=json.dumps(bundle.env_kwargs, sort_keys=True),
            checkpoint_sha256=bundle.checkpoint_sha256, submitted_at=_now(), status="pending",
        )  # fmt: skip
        with self.session() as session, session.begin():
            session.add(row)
            session.flush()  # assigns the id
            for name in ("config.json", "model.safetensors"):
                content = bundle.files[name]
                session.add(SubmissionFile(submission_id=row.id, name=name, content=content,
                                           sha256=hashlib.sha256(content).hexdigest()))
        return row.id

    def count(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(Submission)) or 0)

    def file_count(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(SubmissionFile)) or 0)

    def get(self, submission_id: int) -> Submission:
        with self.session() as session:
            row = session.get(Submission, submission_id)
        if row is None:
            raise StoreError(f"no submission {submission_id}; `polymimic leaderboard list` "
                             "shows the entries")
        return row

    def files(self, submission_id: int) -> dict[str, bytes]:
        with self.session() as session:
            rows = session.scalars(
                select(SubmissionFile).where(SubmissionFile.submission_id == submission_id)
            ).all()
            return {row.name: row.content for row in rows}

    def entries(self, task: str | None = None) -> list[Submission]:
        """All submissions (of one task), newest first."""
        query = select(Submission).order_by(Submission.id.desc())
        if task is not None:
            query = query.where(Submission.task == task)
        with self.session() as session:
            return list(session.scalars(query).all())

    def _claimable(self, now: dt.datetime) -> Any:
        """Pending rows, and running rows whose worker's lease has passed (a dead worker)."""
        expired = and_(Submission.status == "running", Submission.lease_until.is_not(None),
                       Submission.lease_until < now)
        return or_(Submission.status == "pending", expired)

    def claim_next(self, worker: str, lease_s: float) -> int | None:
        """Take the oldest claimable submission for ``worker`` for ``lease_s`` seconds.

        Claimable: pending, or running under an expired lease. The update repeats the
        select's condition (compare-and-set), so of two workers racing for a row one wins.

        Returns:
            The submission id, or None when nothing is claimable.
        """
        while True:
            now = _now()
            with self.session() as session, session.begin():
                candidate = session.scalar(
                    select(Submission.id).where(self._claimable(now))
                    .order_by(Submission.id).limit(1)
                )
                if candidate is None:
                    return None
                taken = session.execute(
                    update(Submission)
                    .where(Submission.id == candidate, self._claimable(now))
                    .values(status="running", worker=worker[:120], started_at=now,
                            lease_until=now + dt.timedelta(seconds=lease_s))
                ).rowcount
            if taken == 1:
                return candidate
            # another worker took it between the select and the update: try the next one

    def requeue(self, submission_id: int) -> None:
        """Put a submission back in the queue (re-verification, e.g. after a new protocol)."""
        self._set(submission_id, None, status="pending", worker=None, lease_until=None,
                  failure_reason=None)

    def record_failed(self, submission_id: int, reason: str, worker: str | None = None
                      ) -> bool:
        """Mark the entry failed with ``reason``; see :meth:`record_verified` for ``worker``."""
        return self._set(submission_id, worker, status="failed", failure_reason=reason[:2000],
                         verified_at=_now(), lease_until=None)

    def record_verified(self, submission_id: int, values: Mapping[str, Any],
                        worker: str | None = None) -> bool:
        """Store verified metrics (``verify.verified_values``) and mark the entry verified.

        Args:
            worker: record only if this worker still holds the job (it is ``running`` under
                its name): a worker that overran its lease lost the job to another.

        Returns:
            Whether the row was written.
        """
        return self._set(submission_id, worker, status="verified", failure_reason=None,
                         verified_at=_now(), lease_until=None, **values)

    def _set(self, submission_id: int, worker: str | None, **values: Any) -> bool:
        query = update(Submission).where(Submission.id == submission_id)
        if worker is not None:
            query = query.where(Submission.status == "running",
                                Submission.worker == worker[:120])
        with self.session() as session, session.begin():
            return session.execute(query.values(**values)).rowcount == 1
