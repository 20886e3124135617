"""`pipeline` against a hung server (one that accepts connections and never answers): a hung
Prefect behind the API is exit 6 with the API's 503, before the CLI gives up reading; a hung API
is exit 7 with a hint that holds whatever the stack's state directory."""

from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from tests.cli.conftest import CLI_ENV, Cli
from tests.conftest import SetSetting
from tests.support.hung import hanging_prefect, hung_server
from tests.support.rows import add_pipeline


@pytest.fixture
def hung_prefect(setting: SetSetting) -> Iterator[str]:
    with hanging_prefect(setting) as url:
        yield url


async def test_a_trigger_with_prefect_hung_is_exit_6_naming_prefect(
    cli: Cli, hung_prefect: str
) -> None:
    pipeline_id = await add_pipeline("hung")
    result = await cli("trigger", str(pipeline_id))
    assert (result.exit_code, result.stdout, result.stderr) == (
        6,
        "",
        f"error: Prefect API at {hung_prefect} did not answer within 1 s "
        "(PIPELINE_PREFECT_REQUEST_SECONDS); check that its server is not stopped or overloaded, "
        "and check its log and its database. Nothing of this request was kept: a flow run "
        "Prefect makes from it once it answers again starts nothing and ends Cancelled; repeat "
        "the request once Prefect answers.\n",
    )


class Hurried(httpx.HTTPTransport):
    """The real transport, reading an answer for 0.3 s whatever the CLI asked (30 s)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["timeout"] = {**request.extensions["timeout"], "read": 0.3}
        return super().handle_request(request)


def test_a_hung_api_is_exit_7_and_points_at_its_log_wherever_the_stack_keeps_it() -> None:
    """The hint said var/log/api.log, wrong for a stack started with STATE_DIR."""

    def factory(base_url: str, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=headers, transport=Hurried())

    with hung_server() as url:
        result = CliRunner().invoke(
            cli_app, ["list"], obj=factory, env={**CLI_ENV, "PIPELINE_API_URL": url}
        )
    assert (result.exit_code, result.stdout, result.stderr) == (
        7,
        "",
        f"error: the API at {url} did not answer GET /api/pipelines within 30 s; check its log "
        "(under `make up`: api.log in <STATE_DIR>/log, var/log by default) and "
        "`pipeline doctor`\n",
    )
