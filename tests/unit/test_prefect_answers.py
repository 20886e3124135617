"""How the Prefect client's errors reach the watchdog: an error status is an answer about one
request (that run's, kept to it), a connection that fails is Prefect down (the pass ends)."""

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError

from app.pipeline import orchestrator
from app.pipeline.orchestrator import (
    PrefectAnsweredError,
    PrefectRefusedError,
    PrefectUnavailableError,
)


def _answered(code: int) -> PrefectHTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/api/flow_runs/x/set_state")
    response = httpx.Response(code, request=request)
    return PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError(f"{code}", request=request, response=response)
    )


@pytest.mark.parametrize(
    ("code", "kind"), [(500, PrefectAnsweredError), (409, PrefectRefusedError)]
)
async def test_an_error_status_is_an_answer_with_its_code(
    code: int, kind: type[PrefectAnsweredError]
) -> None:
    """A 500 for one flow run (its state change failing on the server) was a bare
    PrefectUnavailableError, told from Prefect down by nothing: it ended every watchdog pass."""
    with pytest.raises(PrefectAnsweredError) as raised:
        async with orchestrator.prefect_client():
            raise _answered(code)
    assert (type(raised.value), raised.value.status_code) == (kind, code)


async def test_a_connection_that_fails_is_prefect_down_not_an_answer() -> None:
    with pytest.raises(PrefectUnavailableError) as raised:
        async with orchestrator.prefect_client():
            raise httpx.ConnectError("connection refused")
    assert not isinstance(raised.value, PrefectAnsweredError)
    assert "is unreachable (ConnectError)" in str(raised.value)
