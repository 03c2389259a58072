"""The credit committee: meetings, members, votes and minutes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "committee_meetings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "credit_limit_id",
            sa.String(36),
            sa.ForeignKey(
                "credit_limits.id", name="fk_committee_meetings_credit_limit_id_credit_limits"
            ),
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("chair", sa.String(100), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("votes_for", sa.Integer(), nullable=False),
        sa.Column("votes_against", sa.Integer(), nullable=False),
        sa.Column("votes_abstain", sa.Integer(), nullable=False),
        sa.Column("signed_by", sa.String(100), nullable=True),
        sa.Column("signed_at", UtcDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("credit_limit_id", name="uq_committee_meetings_credit_limit_id"),
    )
    op.create_table(
        "committee_votes",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(36),
            sa.ForeignKey(
                "committee_meetings.id", name="fk_committee_votes_meeting_id_committee_meetings"
            ),
            nullable=False,
        ),
        sa.Column("member", sa.String(100), nullable=False),
        sa.Column("vote", sa.String(10), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("meeting_id", "member", name="uq_committee_votes_meeting_id"),
    )
    op.create_index("ix_committee_votes_meeting_id", "committee_votes", ["meeting_id"])
    op.create_index(
        "ix_credit_limits_status_expiry_date", "credit_limits", ["status", "expiry_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_credit_limits_status_expiry_date", table_name="credit_limits")
    op.drop_table("committee_votes")
    op.drop_table("committee_meetings")
