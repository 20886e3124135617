"""A failed trigger's clean-up through a database outage: the withdrawal of its run retried for a
while, and when the rows still cannot be removed (or the flow run made cannot be recorded), an
answer that says what is kept, what will become of it and what to do."""

import logging
from dataclasses import dataclass

from app.pipeline import claim, orchestrator
from app.pipeline.transient import through_outage

logger = logging.getLogger(__name__)
# how long a failed trigger keeps trying to remove its rows before it answers that they are kept:
# a database restart or fail-over, not an outage of hours (the client is still waiting)
WITHDRAW_PATIENCE_SECONDS = 30.0


@dataclass(frozen=True)
class Made:
    """What a trigger request made before it asked Prefect: the run, and its pipeline with it."""

    run_id: int
    pipeline_id: int
    with_pipeline: bool  # a create-and-trigger's: the pipeline goes with the run
    keyed: bool = False  # sent with an Idempotency-Key: its repeat makes nothing new

    @property
    def kept(self) -> str:
        if self.with_pipeline:
            return f"pipeline {self.pipeline_id} and its run {self.run_id} were made"
        return f"run {self.run_id} of pipeline {self.pipeline_id} was made"

    @property
    def stay(self) -> str:
        return "stay" if self.with_pipeline else "stays"

    @property
    def not_again(self) -> str:
        made = "another pipeline" if self.with_pipeline else "another run"
        if self.keyed:
            return f"a repeat with the same Idempotency-Key makes no {made.removeprefix('an')}"
        return f"do not repeat this request (it would make {made})"


class RunKeptError(orchestrator.PrefectUnavailableError):
    """The trigger failed (or its outcome could not be recorded) and the database was down too
    long to undo it: the rows stay; the message names them and the way on (answered 503)."""


async def withdraw(made: Made) -> bool:
    """claim.withdraw_unclaimed, tried again while the database is unreachable, for up to
    WITHDRAW_PATIENCE_SECONDS; its last error raised when it never got through."""
    pipeline_id = made.pipeline_id if made.with_pipeline else None

    def failed(exc: BaseException) -> None:
        logger.warning("run %d: its withdrawal failed (%s); trying again", made.run_id, exc)

    return await through_outage(
        lambda: claim.withdraw_unclaimed(made.run_id, pipeline_id),
        budget=WITHDRAW_PATIENCE_SECONDS,
        failed=failed,
    )


def not_withdrawn(
    trigger_error: BaseException,
    db_error: BaseException,
    made: Made,
) -> RunKeptError:
    """The trigger failed and its rows could not be removed: they stay, pending with no flow
    run, until the watchdog fails the run (or a flow run Prefect made after all claims it)."""
    deadline = orchestrator.trigger_deadline().total_seconds()
    why = (
        str(trigger_error)
        if isinstance(trigger_error, orchestrator.PrefectUnavailableError)
        else f"The trigger failed ({type(trigger_error).__name__})."
    )
    return RunKeptError(
        f"{why} The run was not started, and the database was unreachable "
        f"({type(db_error).__name__}) for the {WITHDRAW_PATIENCE_SECONDS:.0f} s this request "
        f"spent removing what it had made: {made.kept} and {made.stay}, "
        f"pending with no flow run; {made.not_again}. Once the database is back, the "
        f'watchdog fails run {made.run_id} when it is {deadline:.0f} s old ("the trigger never '
        f'reached Prefect"; a flow run Prefect made after all runs it instead). Then retry '
        f"pipeline {made.pipeline_id} (POST /api/pipelines/{made.pipeline_id}/retry), or delete it "
        f"(DELETE /api/pipelines/{made.pipeline_id})."
    )


def not_recorded(
    flow_run_id: str,
    db_error: BaseException,
    made: Made,
) -> RunKeptError:
    """Prefect made the flow run but the database went away before it was recorded: the run
    goes on (its flow run claims its row once the database is back); the answer says so."""
    return RunKeptError(
        f"The database became unreachable ({type(db_error).__name__}) after the run was "
        f"started: {made.kept}, and Prefect's flow run "
        f"{flow_run_id} runs it once the database is back; {made.not_again}. "
        f"Follow it with GET /api/pipelines/{made.pipeline_id}."
    )
