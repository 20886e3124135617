"""A warm run's sys.path: its own PYTHONPATH where a cold start of it would put it, or a cold
start when a module the zygote already imported would be found elsewhere (app/pipeline/warm_start/warm.py)."""

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from app.pipeline.warm_start.warm import python_path_entries, run_import_path


def test_pythonpath_entries_as_the_interpreter_makes_them() -> None:
    assert python_path_entries("lib:/opt/x/../y/::/opt/y:", "/srv/app") == [
        "/srv/app/lib",
        "/opt/y",
        "/srv/app",
    ]
    assert python_path_entries("", "/srv/app") == []
    assert python_path_entries(None, "/srv/app") == []


@pytest.fixture
def zygote_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The zygote's sys.path, started with PYTHONPATH=<tmp>/worker-lib."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "worker-lib"))
    # absolute, each once, as the interpreter leaves it (a test process's may hold '.' too)
    started = list(dict.fromkeys(os.path.abspath(entry) for entry in sys.path))
    path = [started[0], str(tmp_path / "worker-lib"), *started[1:]]
    monkeypatch.setattr(sys, "path", path)
    return list(path)


def test_the_same_pythonpath_changes_nothing(zygote_path: list[str], tmp_path: Path) -> None:
    assert run_import_path({"PYTHONPATH": str(tmp_path / "worker-lib")}, "/") == (None, None)


def test_a_run_gets_its_own_pythonpath_in_place_of_the_workers(
    zygote_path: list[str], tmp_path: Path
) -> None:
    (tmp_path / "deployment-lib").mkdir()
    (tmp_path / "deployment-lib" / "only_here.py").write_text("VALUE = 1\n")

    path, cold = run_import_path({"PYTHONPATH": "deployment-lib"}, str(tmp_path))

    assert cold is None
    assert path == [zygote_path[0], str(tmp_path / "deployment-lib"), *zygote_path[2:]]
    assert run_import_path({}, "/") == ([zygote_path[0], *zygote_path[2:]], None)


def test_a_module_the_zygote_imported_found_elsewhere_means_a_cold_start(
    zygote_path: list[str], tmp_path: Path
) -> None:
    """A cold start would import the deployment's `polars`; the zygote has imported another."""
    import polars  # noqa: F401  # as the zygote has

    (tmp_path / "deployment-lib").mkdir()
    (tmp_path / "deployment-lib" / "polars.py").write_text("")
    imported = importlib.util.find_spec("polars")
    assert imported is not None

    assert run_import_path({"PYTHONPATH": str(tmp_path / "deployment-lib")}, "/") == (
        None,
        f"its PYTHONPATH finds module 'polars' at {tmp_path}/deployment-lib/polars.py, not where "
        f"this worker imported it ({imported.origin})",
    )


def test_a_namespace_package_with_another_portion_is_no_reason_to_start_cold(
    zygote_path: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's `bench` (a directory without __init__.py) failed the check once another
    test had left a portion of it on the path: "finds module 'bench' at /…/bench, not where
    this worker imported it (/…/bench)"."""
    for portion in ("worker-lib", "deployment-lib"):
        (tmp_path / portion / "spread_out").mkdir(parents=True)
    monkeypatch.delitem(sys.modules, "spread_out", raising=False)
    importlib.import_module("spread_out")  # as the zygote has: from worker-lib only
    try:
        path, cold = run_import_path({"PYTHONPATH": "deployment-lib"}, str(tmp_path))
    finally:
        del sys.modules["spread_out"]
    assert (path, cold) == (
        [zygote_path[0], str(tmp_path / "deployment-lib"), *zygote_path[2:]],
        None,
    )
    (tmp_path / "deployment-lib" / "spread_out" / "__init__.py").write_text("")  # a package
    importlib.import_module("spread_out")
    try:
        _, cold = run_import_path({"PYTHONPATH": "deployment-lib"}, str(tmp_path))
    finally:
        del sys.modules["spread_out"]
    assert cold == (
        f"its PYTHONPATH finds module 'spread_out' at "
        f"{tmp_path / 'deployment-lib' / 'spread_out' / '__init__.py'}, not where this worker "
        f"imported it ({tmp_path / 'worker-lib' / 'spread_out'})"
    )
