"""Prefect's engine entry point, run as `python -m prefect.engine` runs it, with the one end it
leaves wrong put right: a flow run cancelled as its process starts. The worker has set it Pending,
the API's cancel sets it Cancelling, and the engine then finds its Running refused. Prefect 3.8.8's
engine ends on UnfinishedRun ("Run is in CANCELLING state"), a traceback and exit 1, and leaves the
flow run Cancelling for a worker to kill a process that has already gone: it stayed so until the
watchdog settled it ~70 s later. The process that was to run it ends it Cancelled itself.

Both ways a run starts take it: a run forked from the zygote (warm_start/forked_run.py) calls
`run_engine`, and the launcher's cold start (no zygote) is `python -m app.pipeline.engine_run`."""

import logging
import os
import runpy
import sys
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, UnfinishedRun
from prefect.settings import (
    PREFECT_API_REQUEST_TIMEOUT,
    PREFECT_CLIENT_MAX_RETRIES,
    temporary_settings,
)
from prefect.states import Cancelled

CHECK_TIMEOUT_SECONDS = 10.0  # the process is ending: one bounded look, no retries


def quiet_unfinished_cancelling() -> None:
    """Leave out the engine's traceback of that UnfinishedRun: what happened is said once, by
    `end_if_cancelling`, and every other exception the engine logs is still logged."""

    def keep(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, UnfinishedRun) and "CANCELLING" in str(error))

    logging.getLogger("prefect.engine").addFilter(keep)


def end_if_cancelling(flow_run_id: str | None) -> bool:
    """After the engine ended in error: the flow run set Cancelled if Prefect shows it Cancelling
    (no process runs it any more); True when it was."""
    try:
        run_id = UUID(str(flow_run_id))
    except ValueError:
        return False
    with temporary_settings(
        {PREFECT_CLIENT_MAX_RETRIES: 0, PREFECT_API_REQUEST_TIMEOUT: CHECK_TIMEOUT_SECONDS}
    ):
        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(run_id).state
                if state is None or state.type != StateType.CANCELLING:
                    return False
                cancelled: State[None] = Cancelled(message=state.message)
                result = client.set_flow_run_state(run_id, cancelled)
        except (ObjectNotFound, httpx.HTTPError) as exc:
            print(f"flow run {run_id}: its state could not be read: {exc}", file=sys.stderr)
            return False
    if result.status != SetStateStatus.ACCEPT:  # it moved on meanwhile
        return False
    print(
        f"flow run {run_id} was cancelled before it began: Cancelled ({state.message})",
        file=sys.stderr,
        flush=True,
    )
    return True


def run_engine() -> int:
    """Prefect's engine on this process's argv, as `python -m prefect.engine`; its exit code, or 0
    for a flow run it left Cancelling that this process then set Cancelled."""
    quiet_unfinished_cancelling()
    sys.modules.pop("prefect.engine", None)  # run as __main__, as `python -m prefect.engine` does
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code and end_if_cancelling(_flow_run_id()):
            return 0
        return code
    return 0


def _flow_run_id() -> str | None:
    """The flow run the engine was given, as it reads it."""
    return sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PREFECT__FLOW_RUN_ID")


if __name__ == "__main__":
    sys.exit(run_engine())
