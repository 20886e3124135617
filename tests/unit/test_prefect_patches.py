"""Two of the places the service changes Prefect's behaviour in its own processes, each checked in
a subprocess (the changes are process-wide): clients share one verified TLS context per CA file
(app/pipeline/tls.py); a worker renders each settings object into environment variables once
(app/pipeline/worker.py). The third, a worker looking for runs as soon as one is scheduled on its
pool or one of its runs ends, needs a server and a worker: tests/e2e/test_worker_pickup.py.
Last, what the zygote readies for the runs it forks (app/pipeline/warm_start/warm.py)."""

import os
import subprocess
import sys
import textwrap

from app.config import PROJECT_ROOT

CLIENTS = textwrap.dedent(
    """
    import ssl, sys
    from prefect.client.orchestration import PrefectClient
    from app.pipeline.tls import share_tls_contexts

    def context():
        client = PrefectClient("https://prefect.invalid/api")
        return client._client._transport._pool._ssl_context

    def describe():
        first, second = context(), context()
        return f"{first is second} {first.verify_mode == ssl.CERT_REQUIRED} {first.check_hostname}"

    before = describe()
    share_tls_contexts()
    share_tls_contexts()  # idempotent
    print(before, "/", describe())
    """
)


def _run(script: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PREFECT_API_URL": "https://prefect.invalid/api", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _clients(**env: str) -> str:
    """Whether two clients share a context, it verifies, it checks host names: before / after."""
    return _run(CLIENTS, **env)


def test_clients_share_one_verified_context() -> None:
    # by default Prefect builds one per client
    assert _clients() == "False True True / True True True"


def test_an_insecure_client_never_gets_a_shared_context() -> None:
    # Prefect turns verification off on the context it gets: it must be one of its own
    insecure = _clients(PREFECT_API_TLS_INSECURE_SKIP_VERIFY="true")
    assert insecure == "False False False / False False False"


SETTINGS = textwrap.dedent(
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
    from app.pipeline.worker import remember_settings_environment

    settings = get_current_settings()
    rendered = settings.to_environment_variables(exclude_unset=True)
    remember_settings_environment()
    first = settings.to_environment_variables(exclude_unset=True)
    first["PREFECT_API_URL"] = "changed by a caller"
    again = settings.to_environment_variables(exclude_unset=True)
    with temporary_settings({PREFECT_API_URL: "http://other.invalid/api"}):
        other = get_current_settings().to_environment_variables(exclude_unset=True)
    every = settings.to_environment_variables()
    print(again == rendered, other["PREFECT_API_URL"], len(every) > len(rendered))
    """
)


def test_a_worker_renders_each_settings_object_once() -> None:
    # a kept rendering is copied out (a caller's change does not stick), another settings object
    # is rendered afresh, and other options are not answered from the kept one
    assert _run(SETTINGS) == "True http://other.invalid/api True"


PRELOADED = textwrap.dedent(
    """
    import sys
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.importtools import load_script_as_module
    from app.pipeline.warm_start import warm

    deferred = FlowRun.__pydantic_complete__
    warm.preload()
    before = set(sys.modules)
    load_script_as_module("app/pipeline/flows.py")  # as Prefect loads the deployment's entrypoint
    print(deferred, FlowRun.__pydantic_complete__, sorted(set(sys.modules) - before))
    """
)


def test_a_forked_run_finds_its_imports_done_and_prefects_models_built() -> None:
    # Prefect builds FlowRun's validator on first use; a run that loads the flow imports only it
    assert _run(PRELOADED) == "False True ['flows']"
