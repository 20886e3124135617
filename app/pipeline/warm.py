"""What makes a flow run forked from the zygote cheap (app/pipeline/zygote.py).

Measured per run (py-spy over all threads, medians of 12 runs): a forked run used 1.38 CPU-s,
now 0.31. Three causes, none of them Prefect's engine as such:
- its exit (~0.45 CPU-s): the final collection and teardown walked the ~180,000 objects inherited
  from the zygote — now frozen (gc.freeze) and skipped (exit_without_teardown);
- imports at run time (~0.3 CPU-s): everything a run imports is preloaded;
- TLS contexts (~0.18 CPU-s): one per CA file, shared, instead of ~12 per run.
"""

import atexit
import contextlib
import gc
import importlib
import os
import ssl
import sys
import threading
import types
from typing import NoReturn

PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",  # imported by the first task call
    "prefect.utilities.visualization",  # Task.__call__ imports it (and graphviz)
    "prefect._internal.metrics",
    "prefect.deployments.steps.core",
    "prefect.deployments.steps.pull",
    "pydantic.v1",  # Flow() checks its parameters for pydantic v1 models
    "anyio._backends._asyncio",
    "numpy.ma",
    "numpy.random",
    "polars._utils.parquet",
    "rich._emoji_codes",
    "encodings.idna",
    "app.pipeline.work",
    "app.pipeline.status",
    "app.pipeline.inputs",
    "app.pipeline.store",
    "app.observability",
)
# The database driver the first query loads: whichever DATABASE_URL names, so both.
OPTIONAL_PRELOAD = (
    "sqlalchemy.dialects.postgresql.asyncpg",
    "asyncpg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "aiosqlite",
)


def preload() -> None:
    """Import what every flow run imports, so a forked child starts warm; then freeze the heap.

    gc.freeze() moves everything imported so far out of the collector's reach: a child's
    collections (and the one at its exit) no longer walk — and copy-on-write — the zygote's
    ~180,000 objects, which cost a flow run about half of its CPU.
    """
    for module in PRELOAD:
        importlib.import_module(module)
    for module in OPTIONAL_PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _share_tls_contexts()
    gc.collect()
    gc.freeze()


def _share_tls_contexts() -> None:
    """Prefect builds a verified SSLContext for every client it creates (about 12 per flow run),
    each loading the whole CA bundle (~15 ms). Build each once, here, and share it."""
    import prefect._internal.version_checking
    import prefect.client.orchestration

    contexts: dict[tuple[object, ...], ssl.SSLContext] = {}

    def create_default_context(
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
        *,
        cafile: str | None = None,
        capath: str | None = None,
        cadata: str | bytes | None = None,
    ) -> ssl.SSLContext:
        if cafile is None:  # Prefect's insecure path changes the context it gets: never share it
            return ssl.create_default_context(purpose, capath=capath, cadata=cadata)
        key = (purpose, cafile, capath, cadata)
        if key not in contexts:
            contexts[key] = ssl.create_default_context(
                purpose, cafile=cafile, capath=capath, cadata=cadata
            )
        return contexts[key]

    shared = types.ModuleType("ssl")
    shared.__dict__.update(ssl.__dict__)
    shared.create_default_context = create_default_context  # type: ignore[attr-defined]
    for module in (prefect.client.orchestration, prefect._internal.version_checking):
        module.ssl = shared  # type: ignore[attr-defined]
    import certifi

    create_default_context(cafile=certifi.where())  # Prefect's default: built before the fork


def exit_without_teardown(code: int) -> NoReturn:
    """End a forked flow run as the interpreter would — Prefect's services drained (logs,
    events), threads joined, atexit hooks run, output flushed — but skip tearing down the
    zygote's modules and heap, which only the exit itself would pay for."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize runs first
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    finally:
        os._exit(code)
