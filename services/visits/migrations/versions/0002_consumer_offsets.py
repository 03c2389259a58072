"""Consumer positions kept in the service database with the effects.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from crmkit.migrations import create_consumer_offsets_v1, drop_consumer_offsets_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_consumer_offsets_v1(op)


def downgrade() -> None:
    drop_consumer_offsets_v1(op)
