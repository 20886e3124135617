"""The `pipeline` Typer app: its global options, how commands reach the API and report errors."""

import codecs
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NoReturn, ParamSpec, cast

import httpx
import typer
from rich.console import Console
from rich.segment import Segment

from app.cli.client import (
    DEFAULT_API_URL,
    EXIT_CODES_HELP,
    Api,
    ClientFactory,
    CliError,
    ExitCode,
    http_client,
)

app = typer.Typer(
    name="pipeline",
    help="Create, trigger, watch and operate data pipelines through the pipeline service's API. "
    "Times are UTC.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",  # docstrings' line breaks are not kept in --help
)

P = ParamSpec("P")


def command(
    name: str | None = None, *, group: typer.Typer | None = None
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """`app.command` (or a sub-group's), with every CliError reported as one line on stderr and
    its exit code."""

    def register(func: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(func)
        def reported(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                func(*args, **kwargs)
            except CliError as exc:
                stderr().print(f"error: {exc.message}", soft_wrap=True, markup=False)
                raise typer.Exit(exc.code) from None
            except KeyboardInterrupt:
                stderr().print("interrupted")
                raise typer.Exit(ExitCode.INTERRUPTED) from None
            except BrokenPipeError:  # typer.echo's lines to a reader gone (| head)
                stop_writing()

        (group or app).command(name)(reported)
        return func

    return register


# C0 and C1 control characters but tab and newline: text from the API (a name, an error, a log
# line) must not clear the reader's screen or retitle their window (ESC [2J, ESC ]0;…)
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(9), *range(11, 32), *range(127, 160))}
# and the bidi embeddings, overrides and isolates (a name stored before the API refused them):
# U+202E reversed the rest of its table row, columns and all (the marks, LRM and RLM, stay)
_CONTROLS |= {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


class _Console(Console):
    """A console for user text: no markup, no :emoji: codes, control characters shown escaped;
    a reader gone (| head) ends the command quietly."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(highlight=False, markup=False, emoji=False, **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment
            if segment.control
            else Segment(segment.text.translate(_CONTROLS), segment.style)
            for segment in buffer
        )

    def on_broken_pipe(self) -> None:
        stop_writing()


# What a terminal that is not UTF-8 (PYTHONIOENCODING=ascii, a latin-1 locale) gets instead of
# a character it cannot show: one character for one, so tables stay aligned; "?" for the rest
_LOOKALIKES = str.maketrans(
    {
        "\N{LEFT DOUBLE QUOTATION MARK}": '"',
        "\N{RIGHT DOUBLE QUOTATION MARK}": '"',
        "\N{LEFT SINGLE QUOTATION MARK}": "'",
        "\N{RIGHT SINGLE QUOTATION MARK}": "'",
        "\N{MIDDLE DOT}": "-",
        "\N{BULLET}": "*",
        "\N{EM DASH}": "-",
        "\N{EN DASH}": "-",
        "\N{HORIZONTAL ELLIPSIS}": "~",  # a cut cell
    }
)
LOOKALIKES = "pipeline-lookalikes"


def _lookalikes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    cannot = error.object[error.start : error.end].translate(_LOOKALIKES)
    return "".join(c if c.isascii() else "?" for c in cannot), error.end


codecs.register_error(LOOKALIKES, _lookalikes)


def write_anything() -> None:
    """Whatever the terminal's encoding, stdout and stderr write every text, never failing with
    a UnicodeEncodeError (exit 70, after a pipeline was created)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=LOOKALIKES)


def is_utf8(stream: Any) -> bool:
    """Whether `stream` writes UTF-8 (as Rich decides it: ASCII boxes otherwise)."""
    return (getattr(stream, "encoding", None) or "utf-8").lower().startswith("utf")


def stop_writing() -> NoReturn:
    """The reader of stdout went away: exit 0, as `| head` wants, writing nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(0)


def stdout() -> Console:
    return _Console()


def stderr() -> Console:
    return _Console(stderr=True)


def api(ctx: typer.Context) -> Api:
    return cast(Api, ctx.obj)


def json_text(value: Any, *, indent: int | None = None) -> str:
    """JSON as UTF-8 text, or \\u escapes on a terminal that is not UTF-8: the same JSON."""
    return json.dumps(value, indent=indent, ensure_ascii=not is_utf8(sys.stdout))


def print_json(value: Any) -> None:
    typer.echo(json_text(value, indent=2))


@app.callback()
def _connect(
    ctx: typer.Context,
    api_url: Annotated[
        str, typer.Option(envvar="PIPELINE_API_URL", help="The pipeline service's address.")
    ] = DEFAULT_API_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PIPELINE_API_KEY",
            help="An API key, when the service sets API_KEYS.",
            show_default=False,
        ),
    ] = None,
) -> None:
    # tests pass a client factory as `obj` (the app in-process); otherwise a real HTTP client
    api_key = api_key.strip() if api_key else None  # the service strips its API_KEYS too
    if api_key and not (api_key.isascii() and api_key.isprintable()):
        raise typer.BadParameter(
            "must be printable ASCII (it travels in an HTTP header); check PIPELINE_API_KEY",
            param_hint="--api-key",
        )
    try:
        scheme = httpx.URL(api_url).scheme
    except httpx.InvalidURL as exc:
        raise typer.BadParameter(f"{exc}; check PIPELINE_API_URL", param_hint="--api-url") from None
    if scheme not in ("http", "https"):  # `localhost:8000` parses, with "localhost" as scheme
        raise typer.BadParameter(
            f"{api_url!r} does not start with http:// or https://; e.g. http://localhost:8000 "
            "(check PIPELINE_API_URL)",
            param_hint="--api-url",
        )
    factory = cast(ClientFactory, ctx.obj) if callable(ctx.obj) else http_client
    connection = Api(api_url.rstrip("/"), api_key or None, factory)
    ctx.obj = connection
    ctx.call_on_close(connection.close)


JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
WaitOption = Annotated[
    bool, typer.Option("--wait", "-w", help="Show the stages live until the run ends.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(help="With --wait: give up after this many seconds (exit 7).", min=0),
]
IntervalOption = Annotated[
    float, typer.Option(help="Seconds between two polls of the API.", min=0.05)
]
PipelineId = Annotated[int, typer.Argument(help="The pipeline's id.", min=1)]
RunOption = Annotated[
    int | None,
    typer.Option(
        "--run",
        min=1,
        max=2**31 - 1,  # the API's bound of an id, said here as --run's
        help="The run's id (default: the latest run).",
        show_default=False,
    ),
]
