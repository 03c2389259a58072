"""Customer copies and the kit tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

from crmkit.migrations import create_kit_tables_v1, drop_kit_tables_v1
from crmkit.replicas import create_customer_refs_v1, drop_customer_refs_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_kit_tables_v1(op)
    create_customer_refs_v1(op)


def downgrade() -> None:
    drop_customer_refs_v1(op)
    drop_kit_tables_v1(op)
