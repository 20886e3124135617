"""The settling pass's read of the runs that ended lately goes through the index of their ends:
it runs at every watchdog pass, and the finished runs only grow."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text

from app.db import get_engine, get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline.reconcile import settling
from tests.support.watchdog_prefect import ended_run


@pytest.fixture
def statements(database: str) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent to the database, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sync_engine = get_engine().sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(sync_engine, "before_cursor_execute", record)


async def many_ended_long_ago(like: int, count: int = 5000) -> None:
    """`count` runs of `like`'s pipeline that ended 1 to 30 days ago: the table of a service up a
    while, its statistics read (PostgreSQL plans by them: on the tables of the tests before, the
    index of the flow-run ids served as well)."""
    async with get_sessionmaker()() as session, session.begin():
        pipeline_id = await session.scalar(select(PipelineRun.pipeline_id).filter_by(id=like))
        now = utcnow()
        rows = [
            {
                "pipeline_id": pipeline_id,
                "status": Status.COMPLETED,
                "record_count": 10,
                "prefect_flow_run_id": f"00000000-0000-0000-0000-{number:012d}",
                "completed_at": now - timedelta(days=1, minutes=8 * number),
            }
            for number in range(count)
        ]
        await session.execute(insert(PipelineRun), rows)
    async with get_engine().begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("ANALYZE pipeline_runs"))


async def test_the_runs_that_ended_lately_are_read_through_the_index_of_their_ends(
    database: str, statements: list[tuple[str, Any]]
) -> None:
    run_id = await ended_run(Status.COMPLETED, ago=timedelta(minutes=2))
    await many_ended_long_ago(run_id)
    statements.clear()

    assert list((await settling.ended_lately()).values()) == [Status.COMPLETED]

    (query, parameters), *_ = [(s, p) for s, p in statements if "completed_at >" in s]
    async with get_engine().connect() as connection:
        if connection.dialect.name == "sqlite":
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", parameters)
            details = [row[3] for row in plan]
        else:
            plan = await connection.exec_driver_sql(f"EXPLAIN {query}", parameters)
            details = [row[0] for row in plan]
    assert any("ix_pipeline_runs_completed_at" in line for line in details), details
