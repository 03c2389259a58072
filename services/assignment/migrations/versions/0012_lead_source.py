"""Where a target-list entry came from: a teller's register entry in the visits service.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=True))
        batch.add_column(sa.Column("source_ref", sa.String(36), nullable=True))
        batch.create_unique_constraint("uq_leads_source_ref", ["source_ref"])


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_constraint("uq_leads_source_ref", type_="unique")
        batch.drop_column("source_ref")
        batch.drop_column("source")
