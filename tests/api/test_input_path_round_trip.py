"""A pipeline's input_path reads back as the create takes it (relative to PIPELINE_INPUT_DIR), and
a file named through a symlink is the name the user gave: its format, and what each run reads."""

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import work
from app.pipeline.store import RunFiles, uploads_dir
from app.pipeline.work import InputSource
from tests.api.test_uploads import GOOD, csv, input_dir, pipelines, upload
from tests.conftest import SetSetting

__all__ = ["input_dir"]  # the fixture, shared with test_uploads

SECOND = GOOD.replace("1,first", "2,second", 1)
THIRD = GOOD.replace("1,first", "3,third", 1)


async def _stored(pipeline_id: int) -> str | None:
    """The row's input_path: where the runs read the file."""
    async with get_sessionmaker()() as session:
        query = select(Pipeline.input_path).where(Pipeline.id == pipeline_id)
        return (await session.execute(query)).scalar_one()


async def test_a_pipeline_read_back_is_created_again_as_it_reads(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """input_path read as the absolute resolved path, which the create refused ("must be
    relative to PIPELINE_INPUT_DIR"): a pipeline read back could not be sent again."""
    (input_dir / "daily").mkdir()
    (input_dir / "daily" / "orders.csv").write_bytes(csv(GOOD, SECOND))
    given = ["daily/orders.csv", "./daily/../daily/orders.csv", "daily//orders.csv"]
    read = []
    for input_path in given:
        created = await client.post("/api/pipelines", json={"name": "d", "input_path": input_path})
        assert created.status_code == 201, created.text
        pipeline_id = created.json()["id"]
        one = (await client.get(f"/api/pipelines/{pipeline_id}")).json()
        read.append((created.json()["input_path"], one["input_path"]))
        again = await client.post(
            "/api/pipelines", json={"name": one["name"], "input_path": one["input_path"]}
        )
        assert again.status_code == 201, again.text
        assert (again.json()["input_path"], again.json()["record_count"]) == ("daily/orders.csv", 2)
    assert read == [("daily/orders.csv", "daily/orders.csv")] * 3
    listed = (await client.get("/api/pipelines")).json()["items"]
    assert [p["input_path"] for p in listed] == ["daily/orders.csv"] * 6
    # the row keeps the absolute path its runs read, as before
    root = await asyncio.to_thread(input_dir.resolve)
    assert await _stored(1) == str(root / "daily" / "orders.csv")


async def test_rows_stored_before_read_relative_and_others_absolute(
    client: httpx.AsyncClient, input_dir: Path, setting: SetSetting, tmp_path: Path
) -> None:
    """A row stored under today's PIPELINE_INPUT_DIR reads relative; one of an earlier directory,
    or an upload, reads absolute: no create takes those back, and the 422 says why."""
    (input_dir / "a.csv").write_bytes(csv(GOOD))
    root = await asyncio.to_thread(input_dir.resolve)
    before, earlier = str(root / "a.csv"), str(tmp_path / "earlier" / "a.csv")
    uploaded = await upload(client, csv(GOOD))
    assert uploaded.status_code == 201, uploaded.text
    upload_path = await _stored(1)
    assert upload_path == str(uploads_dir() / Path(upload_path or "").parent.name / "input.csv")
    async with get_sessionmaker()() as session:
        session.add(Pipeline(name="before", record_count=1, input_path=before))
        session.add(Pipeline(name="earlier", record_count=1, input_path=earlier))
        await session.commit()
    listed = (await client.get("/api/pipelines")).json()["items"]
    assert [(p["name"], p["input_path"]) for p in listed] == [
        ("earlier", earlier),
        ("before", "a.csv"),
        ("upload", upload_path),
    ]
    sent_back = await client.post(
        "/api/pipelines", json={"name": "again", "input_path": upload_path}
    )
    assert (sent_back.status_code, sent_back.json()["message"]) == (
        422,
        f"input_path: {upload_path!r} is an uploaded file; upload it again instead",
    )
    setting("PIPELINE_INPUT_DIR", "")  # unset: nothing is relative to it
    listed = (await client.get("/api/pipelines")).json()["items"]
    assert [p["input_path"] for p in listed] == [earlier, before, upload_path]
    assert await pipelines() == 3


async def test_a_symlink_is_read_back_by_its_name_and_followed_by_each_run(
    client: httpx.AsyncClient, input_dir: Path, tmp_path: Path
) -> None:
    """latest.csv → 2026-11-25.csv read back as 2026-11-25.csv, and every run kept reading that
    file after the link was moved on to the next day's (the row held the resolved path)."""
    (input_dir / "2026-11-25.csv").write_bytes(csv(GOOD))
    (input_dir / "2026-11-26.csv").write_bytes(csv(GOOD, SECOND, THIRD))
    (input_dir / "latest.csv").symlink_to("2026-11-25.csv")
    created = await client.post("/api/pipelines", json={"name": "l", "input_path": "latest.csv"})
    assert created.status_code == 201, created.text
    assert (created.json()["input_path"], created.json()["record_count"]) == ("latest.csv", 1)
    stored = await _stored(created.json()["id"])
    assert stored == str(await asyncio.to_thread(input_dir.resolve) / "latest.csv")
    (input_dir / "latest.csv").unlink()
    (input_dir / "latest.csv").symlink_to("2026-11-26.csv")
    source = InputSource(Path(stored), "csv")
    files = RunFiles(tmp_path / "run")
    counts = work.generate(files, record_count=0, seed=1, batch_rows=10, source=source)
    assert counts == work.StageOutput(3, 3)
    (input_dir / "2026-11").mkdir()
    (input_dir / "2026-11" / "orders.csv").write_bytes(csv(GOOD))
    (input_dir / "this-month").symlink_to("2026-11")  # a folder's link is kept the same way
    month = {"name": "m", "input_path": "this-month/orders.csv"}
    assert (await client.post("/api/pipelines", json=month)).json()["input_path"] == (
        "this-month/orders.csv"
    )


async def test_the_format_is_the_name_given_not_the_symlink_target_s(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """orders.csv → blob.bin was refused ("cannot tell the format of 'blob.bin'"), and
    blob.bin → orders.csv accepted as CSV: the target's name decided, not the user's."""
    (input_dir / "blob.bin").write_bytes(csv(GOOD))
    (input_dir / "orders.csv").symlink_to("blob.bin")
    (input_dir / "real.csv").write_bytes(csv(GOOD))
    (input_dir / "opaque").symlink_to("real.csv")
    (input_dir / "orders.parquet").symlink_to("real.csv")
    answers = {}
    for name in ("orders.csv", "opaque", "orders.parquet"):
        response = await client.post("/api/pipelines", json={"name": "x", "input_path": name})
        body = response.json()
        answers[name] = (response.status_code, body.get("input_format") or body.get("message"))
    assert answers == {
        "orders.csv": (201, "csv"),
        "opaque": (
            422,
            "input_path: cannot tell the format of 'opaque': rename the file to end in .csv, "
            ".jsonl or .parquet (optionally .gz, .bz2 or .xz)",
        ),
        "orders.parquet": (422, "input_path: not a Parquet file (it does not start with PAR1)"),
    }
