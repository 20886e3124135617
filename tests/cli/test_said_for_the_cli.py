"""What the CLI says in its own terms: the API's upload fields as the options that set them, a
name the CLI made from a file's name that the API would refuse, one record as one."""

from pathlib import Path

import pytest

from app.api.forms import multipart
from app.cli import client
from app.models import Status
from tests.cli.conftest import AppTransport, Cli
from tests.cli.test_writes import CSV
from tests.support.rows import add_pipeline, add_run, done


def _form_name(transport: AppTransport) -> str:
    """The `name` field of the upload the command sent."""
    form = transport.sent[0].content.decode()
    return form.split('name="name"\r\n\r\n', 1)[1].split("\r\n", 1)[0]


async def test_a_file_names_control_characters_are_left_out_of_the_name_made_from_it(
    cli: Cli, transport: AppTransport, tmp_path: Path
) -> None:
    """`create --file 'o\\x1b[31mrders.csv'` was told `name: holds the control character U+001B…`
    of a name it never gave: the name made from the file's name leaves them out (and is cut to
    the API's 200 characters); a --name given is the user's, sent as given."""
    escaped = tmp_path / "o\x1b[31mrders.csv"
    escaped.write_text(CSV)
    created = await cli("create", "--file", str(escaped))
    assert (created.exit_code, created.stdout, created.stderr) == (
        0,
        "pipeline 1 “o[31mrders.csv” created\nrun it: pipeline trigger 1\n",
        "",
    )
    assert _form_name(transport) == "o[31mrders.csv"

    turned = tmp_path / "invoice\u202etxt.csv"  # shown as invoicevsc.txt: a right-to-left override
    turned.write_text(CSV)
    transport.sent.clear()
    assert (await cli("create", "--file", str(turned))).exit_code == 0
    assert _form_name(transport) == "invoicetxt.csv"

    long = tmp_path / f"{'x' * 230}.csv"
    long.write_text(CSV)
    transport.sent.clear()
    assert (await cli("create", "--file", str(long))).exit_code == 0
    assert _form_name(transport) == "x" * 200

    given = await cli("create", "--file", str(escaped), "--name", "o\x1b[31mrders")
    assert (given.exit_code, given.stdout, given.stderr) == (
        4,
        "",
        "error: name: holds the control character U+001B (escape) at position 2; remove it (a "
        "name is one line of printable text)\n",
    )


async def test_the_apis_format_field_is_the_format_option(cli: Cli, tmp_path: Path) -> None:
    """The API tells an upload `send it as format=jsonl`; this command's user passes --format."""
    jsonl = tmp_path / "orders.csv"
    jsonl.write_text('{"id": 1}\n')
    parquet = tmp_path / "export.csv"
    parquet.write_bytes(b"PAR1" + bytes(20))
    cases = {
        jsonl: "error: file: line 1: a JSON object: the content looks like JSON Lines, not CSV; "
        "pass --format jsonl\n",
        parquet: "error: file: the content is Parquet, not csv; pass --format parquet\n",
    }
    for path, said in cases.items():
        refused = await cli("create", "--file", str(path))
        assert (refused.exit_code, refused.stdout, refused.stderr) == (4, "", said)


@pytest.mark.parametrize(
    ("api", "cli"),
    [
        (
            multipart._misnamed("upload", "my (1).csv").errors()[0]["msg"],
            "a file part under another name; pass the file with --file",
        ),
        (
            "format: csv cannot hold the column(s) a (List(Int64)); download format=parquet or "
            "format=jsonl",
            "format: csv cannot hold the column(s) a (List(Int64)); pass --format parquet or "
            "--format jsonl",
        ),
        (
            "format: jsonl cannot hold the column(s) a (Object); download format=parquet",
            "format: jsonl cannot hold the column(s) a (Object); pass --format parquet",
        ),
        ("file: send the input file as the form field 'file'", "file: pass the file with --file"),
    ],
)
def test_upload_and_download_fields_are_said_as_options(api: str, cli: str) -> None:
    """Messages the CLI's own requests cannot draw (it names its file part `file`) in the
    API's words, as the CLI would show them."""
    assert client._in_cli_terms(api) == cli


async def test_one_record_is_one(cli: Cli) -> None:
    """`1 records processed`."""
    await add_pipeline("single")
    await add_run(
        1,
        Status.COMPLETED,
        {
            "generate": done(0.1, 2, 2),
            "ingest": done(0.1, 2, 1, rejected=1),
            **{name: done(0.1, 1, 1) for name in ("process", "transform", "export")},
        },
        duration_seconds=0.5,
        records_processed=1,
        output_file="/srv/results.parquet",
    )
    watched = await cli("watch", "1")
    assert (watched.exit_code, watched.stderr) == (0, "")
    assert watched.stdout.splitlines()[-1] == (
        "run 1 of pipeline 1 completed in 0.50 s: 1 record processed, 1 rejected; save them "
        "with `pipeline download 1`"
    )
