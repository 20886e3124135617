"""What makes a flow run forked from the zygote cheap (zygote.py).

Measured per run (py-spy over all threads, medians): a forked run used 1.38 CPU-s, now 0.24.
The causes, none of them Prefect's engine as such:
- its exit (~0.45 CPU-s): the final collection and teardown walked the ~180,000 objects inherited
  from the zygote — now frozen (gc.freeze) and skipped (exit_without_teardown);
- imports at run time (~0.3 CPU-s): everything a run imports is preloaded, the imports of the
  flow's own file (Prefect loads it afresh in every run) included;
- TLS contexts (~0.18 CPU-s): one per CA file, shared, instead of ~12 per run (app/pipeline/tls.py);
- logging configured again although nothing it is built from changed (~18%): see
  zygote._refresh_settings; the ORM's mappers, configured on first use: now here;
- Prefect's pydantic schemas (FlowRun, Deployment, Event, …), built on first use: now here
  (with the flow file's imports: 0.28 to 0.30 → 0.24 CPU-s per run, the zygote's exit lines);
- with Datadog on, importing ddtrace and datadog (~0.75 s): preloaded when an agent is configured.

And what a forked run needs to be the run a cold start would be: its own PYTHONPATH on sys.path
(run_import_path), or a cold start when the zygote already imported a module from elsewhere.
"""

import atexit
import contextlib
import gc
import importlib
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from importlib.machinery import ModuleSpec, PathFinder
from typing import NoReturn

import pydantic
import sqlalchemy.orm

from app import observability
from app.pipeline.tls import share_tls_contexts

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
    "app.pipeline.stops",
    "app.pipeline.claim",
    "app.pipeline.drills",
    "app.pipeline.retries",
    "app.pipeline.failures",
    "app.pipeline.schedules",  # with Prefect's server-side schedule schemas, croniter and pytz
    "app.pipeline.input_files.inputs",
    "app.pipeline.store",
    "app.pipeline.disk",
    "app.observability",
    "app.pipeline.telemetry",
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
    share_tls_contexts()
    # the ORM's mappers are configured on first use: in every child, unless done here
    sqlalchemy.orm.configure_mappers()
    complete_deferred_models()
    observability.preload()  # Datadog's libraries, last, as a run imports them after the rest
    gc.collect()
    gc.freeze()


def complete_deferred_models() -> None:
    """Build the validators of pydantic models whose build was deferred to first use.

    Prefect's schemas (FlowRun, Deployment, WorkQueue, Event, …) are built on first use, which in
    a forked run means in every run. A model that cannot be built yet stays deferred."""
    pending: list[type[pydantic.BaseModel]] = [pydantic.BaseModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_complete__:
            with contextlib.suppress(Exception):
                model.model_rebuild(raise_errors=False)


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


def exit_at_once() -> NoReturn:
    """End the zygote once stopped: it ran nothing itself that an exit hook would finish, and the
    hooks its preloaded libraries registered reach out — ddtrace's sent to a Datadog agent that
    had hung, and the worker's stop waited ~6 s for them."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def python_path_entries(value: str | None, cwd: str) -> list[str]:
    """The sys.path entries PYTHONPATH gives an interpreter started in `cwd`: made absolute (an
    empty entry is `cwd`), in order, each once."""
    return _once(os.path.join(cwd, entry) for entry in value.split(os.pathsep)) if value else []


def _once(paths: Iterable[str]) -> list[str]:
    """`paths` made absolute, without the repeats (as site.removeduppaths leaves sys.path)."""
    kept: dict[str, str] = {}
    for path in paths:
        kept.setdefault(os.path.normcase(os.path.abspath(path)), os.path.abspath(path))
    return list(kept.values())


def run_import_path(env: Mapping[str, str], cwd: str) -> tuple[list[str] | None, str | None]:
    """The sys.path of a run whose PYTHONPATH differs from the zygote's, as its cold start would
    begin it (the zygote's PYTHONPATH entries, right after sys.path[0], replaced by the run's);
    None when it does not differ. Or why the run must start cold: a module the zygote imported
    would be found elsewhere on that path (or nowhere), and a cold start would import that one."""
    ours = python_path_entries(os.environ.get("PYTHONPATH"), os.getcwd())
    theirs = python_path_entries(env.get("PYTHONPATH"), cwd)
    if theirs == ours:
        return None, None
    end = 1
    while end < len(sys.path) and sys.path[end] in ours:
        end += 1
    path = _once([*sys.path[:1], *theirs, *sys.path[end:]])
    for name, module in list(sys.modules.items()):
        if "." in name or getattr(module, "__spec__", None) is None:
            continue
        imported, found = (_where(PathFinder.find_spec(name, p)) for p in (sys.path, path))
        if found != imported and not (_namespace(found) and _namespace(imported)):
            return None, (
                f"its PYTHONPATH finds module {name!r} at {_shown(found, 'nowhere')}, not where "
                f"this worker imported it ({_shown(imported, 'not on sys.path')})"
            )
    return path, None


def _where(spec: ModuleSpec | None) -> tuple[str | None, ...] | None:
    return None if spec is None else (spec.origin, *(spec.submodule_search_locations or ()))


def _namespace(where: tuple[str | None, ...] | None) -> bool:
    """A namespace package (no file of its own): its portions differ with the path (they did in
    the test suite, with nothing shadowed); a regular package of its name is still told apart."""
    return where is not None and where[0] in (None, "namespace")


def _shown(where: tuple[str | None, ...] | None, otherwise: str) -> str:
    """A module's file, or a namespace package's first directory."""
    return next((place for place in where or () if place), otherwise)
