"""Alembic environment of the leaderboard store, run programmatically by ``store.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; there is no
``alembic.ini`` and no URL here. ``render_as_batch`` lets later migrations alter columns
on SQLite (which cannot ``ALTER COLUMN``) by copying the table.
"""

from alembic import context

from polymimic.leaderboard.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
