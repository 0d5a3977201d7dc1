"""A lease on each claimed job: ``lease_until``, after which another worker may reclaim a
job left ``running`` by a worker that died.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows claimed before this revision get no lease; they stay with their worker until an
    # operator requeues them (``Store.requeue``), as before.
    op.add_column("submissions", sa.Column("lease_until", sa.DateTime(timezone=True),
                                           nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("lease_until")
