"""Creating a pipeline: `pipeline create`, and the options and request it shares with
`pipeline run`."""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.text import Text

from app.api.control_chars import REFUSED_IN_NAME
from app.cli.base import JsonOption, api, command, print_json, stdout
from app.cli.client import TIMEOUT_SECONDS, Api, idempotency_key
from app.cli.option_groups import options_of

RecordsOption = Annotated[
    int | None,
    typer.Option("--records", "-n", help="Synthetic records to generate.", show_default="1000"),
]
NameOption = Annotated[
    str | None,
    typer.Option(
        help="The pipeline's name.",
        show_default="cli-N, or the file's name without control characters",
    ),
]
FileOption = Annotated[
    Path | None,
    typer.Option(
        help="A CSV, JSON Lines or Parquet file (optionally .gz/.bz2/.xz) to upload as the "
        "input instead of generated records.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
FormatOption = Annotated[
    Literal["csv", "jsonl", "parquet"] | None,
    typer.Option("--format", help="The --file's format, when its name does not tell."),
]
InputPathOption = Annotated[
    str | None,
    typer.Option(
        "--input-path",
        help="A CSV, JSON Lines or Parquet file on the server, relative to its "
        "PIPELINE_INPUT_DIR, to read instead of generated records (each run reads it again).",
        show_default=False,
    ),
]
MAX_NAME = 200


def name_from(file_name: str) -> str:
    """The default name a file gives a pipeline: its name without the characters (a tab, an
    escape, a right-to-left override) the API refuses in a name, cut to the API's 200
    characters. The user did not type it: a refusal would name a `name` they never gave."""
    name = REFUSED_IN_NAME.sub("", file_name)[:MAX_NAME]  # what the API refuses in one
    return name if name.strip() else "cli-file"


DescriptionOption = Annotated[
    str | None,
    typer.Option(help="What the pipeline is for; `pipeline show` prints it.", show_default=False),
]


@dataclass(frozen=True)
class NewPipeline:
    """The options of `pipeline create` and `pipeline run`: what to make a pipeline of."""

    records: RecordsOption = None
    name: NameOption = None
    file: FileOption = None
    file_format: FormatOption = None
    input_path: InputPathOption = None
    description: DescriptionOption = None


new_pipeline_options = options_of(NewPipeline, into="new")


def create_pipeline(client: Api, new: NewPipeline, *, trigger: bool) -> dict[str, Any]:
    """POST /api/pipelines: generated records, an uploaded --file or a server file named by
    --input-path; the pipeline as the API answers it (with its first run, when `trigger`)."""
    sources = (("--records", new.records), ("--file", new.file), ("--input-path", new.input_path))
    given = [flag for flag, value in sources if value is not None]
    if len(given) > 1:
        which = (
            f"give {given[0]} or {given[1]}, not both"
            if len(given) == 2
            else "give only one of --records, --file and --input-path"
        )
        raise typer.BadParameter(which, param_hint=given[0])
    if new.file_format is not None and new.file is None:
        raise typer.BadParameter(
            "goes with --file only (an --input-path file's name tells its format)",
            param_hint="--format",
        )
    described = {} if new.description is None else {"description": new.description}
    if new.file is not None:
        name = new.name or name_from(new.file.name)
        return _upload(client, new.file, name, new.file_format, described, trigger)
    body: dict[str, Any] = {**described, "trigger": trigger}
    if new.input_path is None:
        count = 1000 if new.records is None else new.records
        body |= {"name": new.name or f"cli-{count}", "record_count": count}
    else:  # the file's rows are the records: the API refuses a record_count with it
        path = new.input_path
        body |= {"name": new.name or name_from(PurePosixPath(path).name or path)}
        body["input_path"] = path
    return dict(client.post("/api/pipelines", json=body, headers=idempotency_key()))


def _upload(
    client: Api,
    file: Path,
    name: str,
    file_format: str | None,
    described: dict[str, str],
    trigger: bool,
) -> dict[str, Any]:
    fields = {"name": name, **described, "trigger": "true" if trigger else "false"}
    if file_format:
        fields["format"] = file_format
    if not file.is_file():  # a pipe's size is unknown: the upload declares one
        raise typer.BadParameter(
            f"{file} is not a regular file; save the data to a file first", param_hint="--file"
        )
    with file.open("rb") as handle:
        # the API checks the whole file before it answers, minutes for gigabytes: giving up
        # after 30 s said "unreachable" of a pipeline that was created and ran
        return dict(
            client.post(
                "/api/pipelines",
                data=fields,
                files={"file": (file.name, handle)},
                headers=idempotency_key(),
                timeout=httpx.Timeout(TIMEOUT_SECONDS, read=None),
            )
        )


@command()
@new_pipeline_options
def create(ctx: typer.Context, new: NewPipeline, as_json: JsonOption = False) -> None:
    """Create a pipeline without running it; start it with `pipeline trigger ID`.

    `pipeline run` takes the same options and starts its first run at once.
    """
    pipeline = create_pipeline(api(ctx), new, trigger=False)
    if as_json:
        print_json(pipeline)
        return
    console = stdout()
    console.print(Text(f"pipeline {pipeline['id']} “{pipeline['name']}” created"), soft_wrap=True)
    console.print(f"run it: pipeline trigger {pipeline['id']}")
