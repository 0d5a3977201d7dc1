"""The first leaderboard schema: submissions (declared, queue state, verified numbers) and
their files.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _floats(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Float(), nullable=True) for name in names]


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("task", sa.String(80), nullable=False),
        sa.Column("policy_type", sa.String(80), nullable=False),
        sa.Column("dataset_id", sa.String(200), nullable=False),
        sa.Column("dataset_sha256", sa.String(64), nullable=False),
        sa.Column("fixed_data", sa.String(200), nullable=True),
        sa.Column("claimed_success", sa.Float(), nullable=False),
        *_floats("claimed_entropy", "claimed_conditional_entropy"),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("env_kwargs", sa.Text(), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(120), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        *_floats("success_rate", "success_ci_low", "success_ci_high", "behaviour_entropy",
                 "behaviour_entropy_ci_low", "behaviour_entropy_ci_high", "conditional_entropy",
                 "conditional_entropy_ci_low", "conditional_entropy_ci_high", "d3il_score"),
        sa.Column("num_episodes", sa.Integer(), nullable=True),
        sa.Column("claim_flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.Text(), nullable=True),
        sa.Column("eval_info", sa.Text(), nullable=True),
    )
    op.create_index("ix_submissions_task", "submissions", ["task"])
    op.create_index("ix_submissions_status", "submissions", ["status"])
    op.create_table(
        "submission_files",
        sa.Column("submission_id", sa.Integer(),
                  sa.ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("submission_files")
    op.drop_index("ix_submissions_status", table_name="submissions")
    op.drop_index("ix_submissions_task", table_name="submissions")
    op.drop_table("submissions")
