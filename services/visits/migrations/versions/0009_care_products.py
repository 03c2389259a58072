"""The product types each customer used on its latest business date (sales bring follow-ups).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_care") as batch:
        batch.add_column(sa.Column("products", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_care") as batch:
        batch.drop_column("products")
