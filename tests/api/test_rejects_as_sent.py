"""GET …/rejects of an uploaded JSON Lines file: each rejected row as it was sent. A line with
"amount": 5000 among lines with "amount": 12.5 came back "amount": "5000" in JSON Lines; a
value of 2000 as 2000.0 in both CSV and JSON Lines."""

from pathlib import Path

import httpx

from app.models import Status
from tests.api.test_uploads import upload
from tests.support import rows
from tests.support.stages import run_stages_on

AT = '"quantity": 2, "is_active": true, "created_at": "2026-03-01T12:00:00Z"'
LINES = [
    f'{{"id": 1, "name": "a", "category": "A", "value": 12.5, {AT}, "amount": 12.5}}',
    f'{{"id": 7, "name": "b", "category": "Z", "value": 12.5, {AT}, "amount": 5000}}',
    f'{{"id": 8, "name": "c", "category": "A", "value": 2000, {AT}, "amount": 7.25}}',
]
UNKNOWN = "unknown category (must be A, B, C or D)"


async def test_an_uploads_rejects_come_back_as_sent(client: httpx.AsyncClient) -> None:
    response = await upload(client, "".join(f"{line}\n" for line in LINES).encode(), "in.jsonl")
    assert response.status_code == 201, response.text
    run_id = await rows.add_run(1, Status.COMPLETED, {}, record_count=3)
    run_stages_on(run_id, Path(response.json()["input_path"]), "jsonl")
    base = f"/api/pipelines/1/runs/{run_id}/rejects"

    jsonl = await client.get(f"{base}?format=jsonl")
    assert (jsonl.status_code, jsonl.text) == (
        200,
        f'{LINES[1][:-1]}, "reject_reason": "{UNKNOWN}"}}\n'
        f'{LINES[2][:-1]}, "reject_reason": "value out of range [10, 1000]"}}\n',
    )
    csv = await client.get(f"{base}?format=csv")
    assert (csv.status_code, csv.text) == (
        200,
        "id,name,category,value,quantity,is_active,created_at,amount,reject_reason\n"
        f'7,b,Z,12.5,2,true,2026-03-01T12:00:00Z,5000,"{UNKNOWN}"\n'
        '8,c,A,2000,2,true,2026-03-01T12:00:00Z,7.25,"value out of range [10, 1000]"\n',
    )


async def test_a_csv_of_rejects_sent_with_nul_or_a_lone_surrogate_is_a_422_naming_jsonl(
    client: httpx.AsyncClient,
) -> None:
    """Polars reads `\\u0000` and an unpaired surrogate alike as NUL: a CSV of such rows held a raw
    NUL byte, and showed `sur\\udc00` as one too. JSON Lines gives each line as it was sent."""
    lines = [
        LINES[0],
        f'{{"id": 2, "name": "sur\\udc00", "category": "A", "value": 12.5, {AT}, "amount": 1}}',
        f'{{"id": 3, "name": "ok", "category": "A", "value": 12.5, {AT}, "note": "nul\\u0000"}}',
    ]
    response = await upload(client, "".join(f"{line}\n" for line in lines).encode(), "in.jsonl")
    assert response.status_code == 201, response.text
    run_id = await rows.add_run(1, Status.COMPLETED, {}, record_count=3)
    run_stages_on(run_id, Path(response.json()["input_path"]), "jsonl")
    base = f"/api/pipelines/1/runs/{run_id}/rejects"

    csv = await client.get(f"{base}?format=csv")
    problem = (
        "csv cannot hold the rejected rows as sent: column(s) name, note hold a \\u0000 or an "
        "unpaired surrogate (such as \\ud800), which CSV would carry as a NUL byte; download "
        "format=jsonl (each line as it was sent) or format=parquet"
    )
    assert (csv.status_code, csv.json()) == (
        422,
        {
            "message": f"format: {problem}",
            "detail": [{"loc": ["query", "format"], "msg": problem, "type": "unwritable_text"}],
        },
    )
    jsonl = await client.get(f"{base}?format=jsonl")
    assert jsonl.status_code == 200
    assert [line.split(', "reject_reason"')[0] for line in jsonl.text.splitlines()] == [
        line[:-1] for line in lines[1:]
    ]
