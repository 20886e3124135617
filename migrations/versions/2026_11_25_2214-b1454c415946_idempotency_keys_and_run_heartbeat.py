"""idempotency keys and run heartbeat

Revision ID: b1454c415946
Revises: ef86eb629133
Create Date: 2026-11-25 22:14:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1454c415946"
down_revision: str | None = "ef86eb629133"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_pipeline_runs_idempotency_key", "pipeline_runs", ["idempotency_key"], unique=True
    )
    with op.batch_alter_table("pipelines") as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.create_index("ix_pipelines_idempotency_key", "pipelines", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_pipelines_idempotency_key", table_name="pipelines")
    with op.batch_alter_table("pipelines") as batch_op:
        batch_op.drop_column("idempotency_key")
    op.drop_index("ix_pipeline_runs_idempotency_key", table_name="pipeline_runs")
    with op.batch_alter_table("pipeline_runs") as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("idempotency_key")
