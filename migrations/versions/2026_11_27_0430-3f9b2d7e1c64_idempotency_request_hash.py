"""idempotency request hash

Revision ID: 3f9b2d7e1c64
Revises: 7d1e4a9c3b52
Create Date: 2026-11-27 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f9b2d7e1c64"
down_revision: str | None = "7d1e4a9c3b52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SQLite rebuilds a table to drop a column: it stays AUTOINCREMENT (see 7d1e4a9c3b52)
KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("pipelines", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipelines", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.drop_column("request_hash")
