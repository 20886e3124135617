"""`pipeline show` says an upload is one because the API says so (input_source), not because its
path looks like the server's storage layout (…/uploads/<32 hex>/input.csv), which the CLI has no
business knowing."""

from pathlib import Path

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline.store import uploads_dir
from tests.cli.conftest import Cli
from tests.cli.test_writes import CSV
from tests.support.rows import T0


async def _records_line(cli: Cli, pipeline_id: int) -> str:
    shown = await cli("show", str(pipeline_id))
    assert (shown.exit_code, shown.stderr) == (0, ""), shown.stderr
    return shown.stdout.splitlines()[1]


async def _stored(name: str, path: Path) -> None:
    async with get_sessionmaker()() as session:
        session.add(
            Pipeline(
                name=name, record_count=3, input_path=str(path), input_format="csv", created_at=T0
            )
        )
        await session.commit()


async def test_show_says_an_uploaded_file_is_one(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(CSV)
    created = await cli("create", "--file", str(tmp_path / "orders.csv"))
    assert (created.exit_code, created.stderr) == (0, ""), created.stderr
    assert await _records_line(cli, 1) == "  records   1 (uploaded csv file)"


async def test_show_takes_the_apis_word_for_an_upload_kept_under_another_name(cli: Cli) -> None:
    """It said the server's path: the name is not uploads/<32 hex>/input.csv."""
    await _stored("kept", uploads_dir() / "an-earlier-layout" / "orders.csv")
    assert await _records_line(cli, 1) == "  records   3 (uploaded csv file)"


async def test_show_names_a_file_that_only_looks_like_an_upload_by_its_path(
    cli: Cli, tmp_path: Path
) -> None:
    """It said "uploaded csv file" of a file named under an earlier PIPELINE_INPUT_DIR whose
    folders happen to read uploads/<32 hex>/."""
    lookalike = tmp_path / "earlier" / "uploads" / ("0123456789abcdef" * 2) / "input.csv"
    await _stored("lookalike", lookalike)
    assert await _records_line(cli, 1) == f"  records   3 ({lookalike} (csv))"
