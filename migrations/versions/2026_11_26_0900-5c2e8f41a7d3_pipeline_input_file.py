"""pipeline input file

Revision ID: 5c2e8f41a7d3
Revises: b1454c415946
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e8f41a7d3"
down_revision: str | None = "b1454c415946"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipelines") as batch_op:
        batch_op.add_column(sa.Column("input_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("input_format", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipelines") as batch_op:
        batch_op.drop_column("input_format")
        batch_op.drop_column("input_path")
