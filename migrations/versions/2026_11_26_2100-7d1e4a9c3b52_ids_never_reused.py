"""ids never reused on SQLite

SQLite hands the highest id out again once its row is deleted, unless the table is AUTOINCREMENT.
A run's id is its flow run's key in Prefect (idempotency key and tag `pipeline-run:<id>`), and
Prefect keeps deleted pipelines' flow runs: a new run with a reused id was given the old flow run
and never ran. PostgreSQL sequences never hand an id out twice: nothing to do there.

Revision ID: 7d1e4a9c3b52
Revises: 5c2e8f41a7d3
Create Date: 2026-11-26 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d1e4a9c3b52"
down_revision: str | None = "5c2e8f41a7d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("pipelines", "pipeline_runs", "pipeline_stages")


def _rebuild(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
