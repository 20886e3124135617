"""A deployment's PYTHONPATH (job variables `env`) reaches its warm runs, forked from the worker's
zygote, as it reaches a cold `prefect` process run: its modules import, and the run stays warm."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import wait_for_flow_run

pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

FLOW = """
import json
import os
import sys

from prefect import flow


@flow(name="pythonpath-probe")
def probe(out: str) -> None:
    import pythonpath_probe_lib  # only on the deployment's PYTHONPATH

    with open(f"/proc/{os.getppid()}/cmdline") as parent:
        started_by = parent.read().split("\\0")
    with open(out, "w") as written:
        json.dump({"value": pythonpath_probe_lib.VALUE, "started_by": started_by}, written)
"""
DEPLOY = """
import sys

from prefect import flow

flow.from_source(source=sys.argv[1], entrypoint="probe_flow.py:probe").deploy(
    name="pythonpath-probe",
    work_pool_name="default",
    job_variables={
        "command": f"{sys.executable} -m app.pipeline.launcher",
        "env": {"PYTHONPATH": sys.argv[2]},
    },
    print_next_steps=False,
)
"""


@pytest.fixture
async def probe_deployment(
    stack: RunningStack, prefect: PrefectClient, tmp_path: Path
) -> AsyncIterator[UUID]:
    """A deployment of its own on the stack's pool, whose env names a directory of modules."""
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "probe_flow.py").write_text(FLOW)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pythonpath_probe_lib.py").write_text('VALUE = "from PYTHONPATH"\n')
    (tmp_path / "deploy_probe.py").write_text(textwrap.dedent(DEPLOY))
    script, flow_dir, lib = (str(tmp_path / name) for name in ("deploy_probe.py", "flow", "lib"))
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, script, flow_dir, lib],
        env={**os.environ, "PREFECT_API_URL": stack.stack.prefect_api_url},
        check=True,
        capture_output=True,
    )
    deployment = await prefect.read_deployment_by_name("pythonpath-probe/pythonpath-probe")
    yield deployment.id
    await prefect.delete_deployment(deployment.id)


@pytest.mark.parametrize(
    ("start", "started_by"),
    [("warm", "app.pipeline.warm_start.zygote"), ("cold", "app.pipeline.worker")],
)
async def test_a_deployments_pythonpath_reaches_its_run_warm_as_cold(
    prefect: PrefectClient, probe_deployment: UUID, tmp_path: Path, start: str, started_by: str
) -> None:
    """Warm: forked from the worker's zygote. Cold: Prefect's own `python -m prefect.engine`, as
    a deployment without the launcher (PIPELINE_WARM_START=false) starts its runs."""
    out = tmp_path / "probe.json"
    cold = {"command": f"{sys.executable} -m prefect.engine"}  # the deployment's env stays
    flow_run = await prefect.create_flow_run_from_deployment(
        probe_deployment,
        parameters={"out": str(out)},
        job_variables=cold if start == "cold" else None,
    )
    ended = await wait_for_flow_run(prefect, str(flow_run.id), within=90)

    assert ended.state is not None and ended.state.type.value == "COMPLETED", ended.state
    probed = json.loads(out.read_text())
    assert (probed["value"], probed["started_by"][1:3]) == ("from PYTHONPATH", ["-m", started_by])
