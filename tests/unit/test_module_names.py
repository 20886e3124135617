"""Prefect loads the deployment's entrypoint, app/pipeline/flows.py, as a script: it puts
app/pipeline at the front of sys.path in the flow-run process, and leaves it there. A module or
package of app/pipeline named like an installed one then shadows it for every import after it
(app/pipeline/distributed.py once hid Dask's `distributed` from prefect_dask, and every Dask run
failed)."""

import importlib.util
import sys
from pathlib import Path

import app.pipeline

PIPELINE_DIR = Path(app.pipeline.__file__).parent


def test_no_pipeline_module_shadows_an_installed_module() -> None:
    others = [entry for entry in sys.path if Path(entry or ".").resolve() != PIPELINE_DIR]
    modules = [path.stem for path in PIPELINE_DIR.glob("*.py") if path.stem != "__init__"]
    packages = [path.parent.name for path in PIPELINE_DIR.glob("*/__init__.py")]
    names = sorted(modules + packages)
    assert {"flows", "input_files", "reconcile", "warm_start"} <= set(names)
    found = {name: importlib.machinery.PathFinder.find_spec(name, others) for name in names}
    shadowing = [
        name
        for name, spec in found.items()
        # a directory without __init__.py (the project's deploy/) is no module to shadow
        if name in sys.stdlib_module_names or (spec is not None and spec.origin is not None)
    ]
    assert shadowing == []
