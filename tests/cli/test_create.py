"""`pipeline create` and `pipeline run`: a description, a file under the server's
PIPELINE_INPUT_DIR (--input-path), a pipeline made without a run; and `pipeline show` says where
a pipeline's records come from in terms its user can act on."""

import json
import re
from pathlib import Path
from typing import cast

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption

from app.cli import app as cli_app
from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline.store import uploads_dir
from tests.cli.conftest import AppTransport, Cli
from tests.cli.test_writes import CSV, prefect  # noqa: F401 (a fixture)
from tests.conftest import SetSetting
from tests.support.rows import T0


@pytest.fixture
def input_dir(tmp_path: Path, setting: SetSetting) -> Path:
    """The server's PIPELINE_INPUT_DIR, holding daily/orders.csv (one record)."""
    root = tmp_path / "inputs"
    (root / "daily").mkdir(parents=True)
    (root / "daily" / "orders.csv").write_text(CSV)
    setting("PIPELINE_INPUT_DIR", str(root))
    return root


def _bodies(transport: AppTransport) -> list[object]:
    """The JSON of each POST /api/pipelines the command sent."""
    return [
        json.loads(r.content)
        for r in transport.sent
        if (r.method, r.url.path) == ("POST", "/api/pipelines")
    ]


async def _shown(cli: Cli, pipeline_id: int) -> list[str]:
    """`pipeline show`'s lines about the pipeline itself, before its runs."""
    shown = await cli("show", str(pipeline_id))
    assert (shown.exit_code, shown.stderr) == (0, ""), shown.stderr
    return shown.stdout.splitlines()[:3]


async def test_create_makes_a_pipeline_without_running_it(
    cli: Cli, transport: AppTransport
) -> None:
    """The CLI could not create a pipeline without running it: here Prefect is unreachable, and
    `run` is refused (503), while `create` needs no Prefect."""
    created = await cli("create", "--records", "10", "--name", "nightly", "--description", "for QA")
    assert (created.exit_code, created.stdout, created.stderr) == (
        0,
        "pipeline 1 “nightly” created\nrun it: pipeline trigger 1\n",
        "",
    )
    assert _bodies(transport) == [
        {"description": "for QA", "trigger": False, "name": "nightly", "record_count": 10}
    ]
    # a repeat of the request (its answer lost) makes no second pipeline
    assert re.fullmatch(r"[0-9a-f]{32}", transport.sent[0].headers["Idempotency-Key"])
    assert await _shown(cli, 1) == [
        "pipeline 1 “nightly” · created",
        "  records   10 (generated)",
        "  about     for QA",
    ]
    as_json = json.loads((await cli("create", "--json")).stdout)
    assert (as_json["id"], as_json["name"], as_json["status"], as_json["latest_run"]) == (
        2,
        "cli-1000",
        "created",
        None,
    )


@pytest.mark.usefixtures("prefect")
async def test_create_and_run_take_a_file_of_the_servers_input_dir(
    cli: Cli, transport: AppTransport, input_dir: Path
) -> None:
    created = await cli("create", "--input-path", "daily/orders.csv")
    assert (created.exit_code, created.stdout, created.stderr) == (
        0,
        "pipeline 1 “orders.csv” created\nrun it: pipeline trigger 1\n",
        "",
    )
    ran = await cli(
        "run", "--input-path", "daily/orders.csv", "--name", "daily", "--description", "d"
    )
    assert (ran.exit_code, ran.stderr) == (0, "")
    assert ran.stdout.splitlines()[0] == "pipeline 2 “daily” created; run 1 pending"
    assert _bodies(transport) == [
        {"trigger": False, "name": "orders.csv", "input_path": "daily/orders.csv"},
        {"description": "d", "trigger": True, "name": "daily", "input_path": "daily/orders.csv"},
    ]
    assert await _shown(cli, 2) == [
        "pipeline 2 “daily” · pending",
        "  records   1 (daily/orders.csv (csv))",
        "  about     d",
    ]


async def test_create_uploads_a_file_without_running_it(
    cli: Cli, transport: AppTransport, tmp_path: Path
) -> None:
    (tmp_path / "orders.csv").write_text(CSV)
    created = await cli("create", "--file", str(tmp_path / "orders.csv"), "--description", "d")
    assert (created.exit_code, created.stdout, created.stderr) == (
        0,
        "pipeline 1 “orders.csv” created\nrun it: pipeline trigger 1\n",
        "",
    )
    form = transport.sent[0].content.decode()
    assert [
        f'name="{field}"\r\n\r\n{value}\r\n' in form
        for field, value in (
            ("name", "orders.csv"),
            ("description", "d"),
            ("trigger", "false"),
        )
    ] == [True] * 3
    # the upload's place on the server is no use to its user: what the dashboard says instead
    assert await _shown(cli, 1) == [
        "pipeline 1 “orders.csv” · created",
        "  records   1 (uploaded csv file)",
        "  about     d",
    ]


async def test_show_says_an_upload_is_one_never_its_path_on_the_server(cli: Cli) -> None:
    """It showed `/…/data/uploads/<hex>/input.csv (csv)`: a place on the server, which no
    command takes back (a create refuses it: upload the file again)."""
    stored = uploads_dir() / "0123456789abcdef0123456789abcdef" / "input.jsonl"
    async with get_sessionmaker()() as session:
        session.add(
            Pipeline(
                name="up",
                record_count=7,
                input_path=str(stored),
                input_format="jsonl",
                created_at=T0,
            )
        )
        await session.commit()
    assert await _shown(cli, 1) == [
        "pipeline 1 “up” · created",
        "  records   7 (uploaded jsonl file)",
        "  created   2026-11-25 09:00:00 UTC",
    ]


async def test_show_names_a_file_of_the_server_as_its_path(cli: Cli, tmp_path: Path) -> None:
    """A file named under an earlier PIPELINE_INPUT_DIR has no name under today's: its path."""
    earlier = str(tmp_path / "earlier" / "uploads" / "orders.csv")
    async with get_sessionmaker()() as session:
        session.add(Pipeline(name="old", record_count=1, input_path=earlier, input_format="csv"))
        await session.commit()
    assert (await _shown(cli, 1))[1] == f"  records   1 ({earlier} (csv))"


async def test_the_apis_refusals_reach_the_user(cli: Cli, setting: SetSetting) -> None:
    off = await cli("create", "--input-path", "daily/orders.csv")
    assert (off.exit_code, off.stdout, off.stderr) == (
        4,
        "",
        "error: input_path: reading files from the server is off: set PIPELINE_INPUT_DIR, or "
        "upload the file\n",
    )
    setting("PIPELINE_INPUT_DIR", "/nonexistent-inputs")
    missing = await cli("run", "--input-path", "missing.csv")
    assert (missing.exit_code, missing.stdout, missing.stderr) == (
        4,
        "",
        "error: input_path: no file 'missing.csv' in PIPELINE_INPUT_DIR\n",
    )
    long = await cli("create", "--description", "x" * 2001)
    assert (long.exit_code, long.stdout, long.stderr) == (
        4,
        "",
        "error: description: must be at most 2,000 characters; got 2,001\n",
    )
    assert json.loads((await cli("list", "--json")).stdout)["total"] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--records", "5", "--input-path", "a.csv"], "give --records or --input-path, not both"),
        (
            ["--file", "orders.csv", "--input-path", "a.csv"],
            "give --file or --input-path, not both",
        ),
        (
            ["-n", "5", "--file", "orders.csv", "--input-path", "a.csv"],
            "give only one of --records, --file and --input-path",
        ),
        (
            ["--input-path", "a.csv", "--format", "csv"],
            "goes with --file only (an --input-path file's name tells its format)",
        ),
    ],
)
async def test_conflicting_options_are_bad_usage(
    cli: Cli, transport: AppTransport, tmp_path: Path, args: list[str], said: str
) -> None:
    (tmp_path / "orders.csv").write_text(CSV)
    args = [str(tmp_path / a) if a == "orders.csv" else a for a in args]
    for command in ("create", "run"):
        result = await cli(command, *args)
        assert result.exit_code == 2
        assert said in " ".join(result.stderr.replace("│", " ").split())
    assert transport.sent == []


def _options(command: str) -> list[tuple[list[str], str | None, object, object]]:
    """`pipeline COMMAND --help`'s options: their names, help, default and default shown."""
    group = cast(TyperGroup, typer.main.get_command(cli_app))
    return [
        (param.opts + param.secondary_opts, param.help, param.default, param.show_default)
        for param in group.commands[command].params
        if isinstance(param, TyperOption)
    ]


def test_create_and_run_list_the_same_options_with_the_same_help() -> None:
    """One definition (app/cli/create.py's NewPipeline) for both: a help text changed in one of
    two copies would leave the other saying the old."""
    created = [
        (["--records", "-n"], "Synthetic records to generate.", None, "1000"),
        (
            ["--name"],
            "The pipeline's name.",
            None,
            "cli-N, or the file's name without control characters",
        ),
        (
            ["--file"],
            "A CSV, JSON Lines or Parquet file (optionally .gz/.bz2/.xz) to upload as the input "
            "instead of generated records.",
            None,
            True,
        ),
        (["--format"], "The --file's format, when its name does not tell.", None, True),
        (
            ["--input-path"],
            "A CSV, JSON Lines or Parquet file on the server, relative to its PIPELINE_INPUT_DIR, "
            "to read instead of generated records (each run reads it again).",
            None,
            False,
        ),
        (
            ["--description"],
            "What the pipeline is for; `pipeline show` prints it.",
            None,
            False,
        ),
        (["--json"], "Print the API's JSON instead.", False, True),
    ]
    assert _options("create") == created
    run = _options("run")
    assert [option[0][0] for option in run] == [
        *(option[0][0] for option in created[:-1]),
        "--wait",
        "--timeout",
        "--interval",
        "--json",
    ]
    assert run[:6] + run[-1:] == created
