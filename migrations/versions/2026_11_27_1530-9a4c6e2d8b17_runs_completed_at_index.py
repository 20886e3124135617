"""runs' completed_at index

The watchdog's settling pass asks, every pass, for the runs that ended in the last few minutes:
without this index that read went through every finished run.

Revision ID: 9a4c6e2d8b17
Revises: 3f9b2d7e1c64
Create Date: 2026-11-27 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9a4c6e2d8b17"
down_revision: str | None = "3f9b2d7e1c64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_pipeline_runs_completed_at"), "pipeline_runs", ["completed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pipeline_runs_completed_at"), table_name="pipeline_runs")
