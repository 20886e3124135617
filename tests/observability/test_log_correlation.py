"""Prefect's own lines of a flow run, logged before the flow's span starts and after it ends,
carry the run's trace like the lines logged inside it."""

import json

from tests.support.datadog import hung_agent, run_python

# A flow-run process: Prefect logs "Beginning flow run …" inside its run context (which holds the
# flow run and its labels) before the flow function starts the flow span, and "Finished in state
# …" after it ended. The agent never answers: tracing off, and no trace on any line.
FLOW_RUN_LINES = """
import contextlib, json, logging
from types import SimpleNamespace
from prefect.context import FlowRunContext
from app import observability
from app.pipeline import telemetry

observability.setup()
log = logging.getLogger("app.test.flow_runs")  # Prefect's own would ship them to its API
ids = {}
tracer = observability.tracer()
with tracer.trace("pipeline.trigger") if tracer else contextlib.nullcontext() as trigger:
    labels = observability.trace_labels()
    ids["trigger"] = [f"{trigger.trace_id:032x}", str(trigger.span_id)] if tracer else None
run = SimpleNamespace(flow_run=SimpleNamespace(id="fr-1", labels=labels))
FlowRunContext.__var__.set(run)  # what Prefect's engine enters before its first line
log.info("Beginning flow run 'x' for flow 'Data Pipeline'", extra={"flow_run_id": "fr-1"})
with telemetry.flow_run(
    flow_name="Data Pipeline", pipeline_id=1, flow_run_id="fr-1", labels=labels
) as tracking:
    log.info("pipeline 1 run 2: completed", extra={"flow_run_id": "fr-1"})
    span = tracking.span
    ids["flow"] = [f"{span.trace_id:032x}", str(span.span_id)] if span else None
log.info("Finished in state Completed()", extra={"flow_run_id": "fr-1"})
log.info("another run's line", extra={"flow_run_id": "fr-2"})
print(json.dumps(ids))
"""


def _lines(stderr: str) -> list[tuple[str, str, str]]:
    return [
        (line["message"], line["dd.trace_id"], line["dd.span_id"])
        for line in map(json.loads, stderr.splitlines())
        if line["logger"] == "app.test.flow_runs"
    ]


def test_prefect_s_lines_around_the_flow_span_carry_the_run_s_trace() -> None:
    """Only the lines logged inside the flow's span carried its trace: Prefect's "Beginning flow
    run", "Finished in state …" and the errors it logs after the flow raised had none."""
    result = run_python(
        FLOW_RUN_LINES,
        DD_AGENT_HOST="127.0.0.1",
        DD_TRACE_AGENT_PORT="9",  # closed: tracing on, its sending fails quietly to the log
    )
    ids = json.loads(result.stdout)
    trigger, flow = ids["trigger"], ids["flow"]
    assert trigger[0] == flow[0]  # the flow continues the trigger's trace
    assert _lines(result.stderr) == [
        # before the flow span starts: the trigger's span, from the flow run's label
        ("Beginning flow run 'x' for flow 'Data Pipeline'", *trigger),
        ("pipeline 1 run 2: completed", *flow),
        # after it ends: the flow span
        ("Finished in state Completed()", *flow),
        ("another run's line", "0", "0"),
    ]


def test_without_tracing_the_lines_carry_no_trace() -> None:
    with hung_agent() as port:
        result = run_python(
            FLOW_RUN_LINES, DD_AGENT_HOST="127.0.0.1", DD_TRACE_AGENT_PORT=str(port)
        )
    assert json.loads(result.stdout) == {"trigger": None, "flow": None}
    assert _lines(result.stderr) == [
        ("Beginning flow run 'x' for flow 'Data Pipeline'", "0", "0"),
        ("pipeline 1 run 2: completed", "0", "0"),
        ("Finished in state Completed()", "0", "0"),
        ("another run's line", "0", "0"),
    ]


# A run cancelled before its flow began: Prefect's engine found its Running refused, left its run
# context and logged "Finished in state Cancelling(…)" outside it; no flow span ever started.
NEVER_BEGAN_LINES = """
import json, logging
from types import SimpleNamespace
from prefect.context import FlowRunContext
from app import observability

observability.setup()
log = logging.getLogger("app.test.flow_runs")
with observability.tracer().trace("pipeline.trigger") as trigger:
    labels = observability.trace_labels()
run = SimpleNamespace(flow_run=SimpleNamespace(id="fr-3", labels=labels))
token = FlowRunContext.__var__.set(run)
log.info("Beginning flow run 'y' for flow 'Data Pipeline'", extra={"flow_run_id": "fr-3"})
FlowRunContext.__var__.reset(token)  # the engine left its run context
log.error("Finished in state Cancelling('cancelled through the API')", extra={"flow_run_id": "fr-3"})
print(json.dumps([f"{trigger.trace_id:032x}", str(trigger.span_id)]))
"""


def test_a_run_that_never_began_ends_on_the_trigger_s_trace() -> None:
    """Its last line, after the engine's run context ended, carried trace id 0."""
    result = run_python(NEVER_BEGAN_LINES, DD_AGENT_HOST="127.0.0.1", DD_TRACE_AGENT_PORT="9")
    trigger = json.loads(result.stdout)
    assert _lines(result.stderr) == [
        ("Beginning flow run 'y' for flow 'Data Pipeline'", *trigger),
        ("Finished in state Cancelling('cancelled through the API')", *trigger),
    ]
