"""A run that failed on Prefect's side says what failed and what to do, its exception kept."""

import httpx
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

from app.pipeline.failures import failure_reason

REQUEST = httpx.Request("POST", "http://127.0.0.1:4200/api/v2/concurrency_limits/increment")


def test_a_slot_prefect_could_not_give_names_the_tags_and_the_retry() -> None:
    exc = ConcurrencySlotAcquisitionError(
        "Unable to acquire concurrency slots on ['tag:data-pipeline']: 503 Service Unavailable"
    )
    assert failure_reason(exc, 7) == (
        "Prefect could not give a stage a slot of its tags' concurrency limits "
        "(PIPELINE_TASK_TAGS): the Prefect server was failing or overloaded "
        "(ConcurrencySlotAcquisitionError: Unable to acquire concurrency slots on "
        "['tag:data-pipeline']: 503 Service Unavailable); "
        "retry the run (POST /api/pipelines/7/retry)"
    )


def test_a_server_error_of_prefect_s_and_an_unreachable_server_say_so() -> None:
    answer = httpx.Response(503, request=REQUEST)
    failed = httpx.HTTPStatusError("Server error '503 Service Unavailable'", request=REQUEST,
                                   response=answer)  # fmt: skip
    assert failure_reason(failed, 3) == (
        "the Prefect server failed a request of the run (HTTPStatusError: Server error '503 "
        "Service Unavailable'); retry the run (POST /api/pipelines/3/retry)"
    )
    unreachable = httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST)
    assert failure_reason(unreachable, 3) == (
        "the run could not reach the Prefect server (ConnectError: [Errno 111] Connection "
        "refused); check that it is up and that PREFECT_API_URL names it, then retry the run "
        "(POST /api/pipelines/3/retry)"
    )


def test_a_client_error_and_any_other_error_are_shown_as_they_are() -> None:
    refused = httpx.HTTPStatusError(
        "Client error '409 Conflict'", request=REQUEST, response=httpx.Response(409)
    )
    assert failure_reason(refused, 1) == "HTTPStatusError: Client error '409 Conflict'"
    assert failure_reason(ValueError("bad"), 1) == "ValueError: bad"
