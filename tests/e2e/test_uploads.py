"""End to end: an uploaded CSV run by the real worker, its results and rejects over HTTP."""

import httpx

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import wait_for_final

UPLOAD = (
    "id,name,category,value,quantity,is_active,created_at,region\n"
    "1,Zoë 🚀,A,100,60,true,2026-03-01 12:00:00,eu\n"
    "2,日本,B,20.5,2,false,2026-03-02 00:00:00,jp\n"
    "3,dup,A,10,1,true,2026-03-03 00:00:00,eu\n"
    "1,again,C,10,1,true,2026-03-03 00:00:00,us\n"
    "4,bad,A,abc,1,true,2026-03-03 00:00:00,us\n"
)


async def test_uploaded_csv_runs_through_the_worker(
    api: httpx.AsyncClient, stack: RunningStack
) -> None:
    created = await api.post(
        "/api/pipelines",
        data={"name": "upload", "trigger": "true"},
        files={"file": ("orders.csv", UPLOAD.encode(), "text/csv")},
    )
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert (pipeline["record_count"], pipeline["input_format"]) == (5, "csv")

    body = await wait_for_final(api, pipeline["id"])
    run = body["latest_run"]
    assert (body["status"], run["records_processed"], run["records_rejected"]) == (
        "completed",
        3,
        2,
    )
    assert [
        (s["name"], s["records_in"], s["records_out"], s["records_rejected"]) for s in run["stages"]
    ] == [
        ("generate", 5, 5, 0),
        ("ingest", 5, 3, 2),
        ("process", 3, 3, 0),
        ("transform", 3, 3, 0),
        ("export", 3, 3, 0),
    ]
    base = f"/api/pipelines/{pipeline['id']}/runs/{run['id']}"
    output = await api.get(f"{base}/output", params={"format": "csv"})
    assert output.text.splitlines()[1:] == [
        "1,Zoë 🚀,A,100.0,60,true,2026-03-01T12:00:00.000000,eu,6000.0,3005.0,true,standard,0.9,5400.0",
        "2,日本,B,20.5,2,false,2026-03-02T00:00:00.000000,jp,41.0,41.0,false,basic,0.85,34.85",
        "3,dup,A,10.0,1,true,2026-03-03T00:00:00.000000,eu,10.0,3005.0,false,basic,0.9,9.0",
    ]
    rejects = await api.get(f"{base}/rejects", params={"format": "jsonl"})
    assert [line.rsplit(",", 1)[-1] for line in rejects.text.splitlines()] == [
        '"reject_reason":"duplicate id"}',
        '"reject_reason":"unparseable value"}',
    ]
    summary = (await api.get(f"{base}/summary")).json()
    assert [(row["category"], row["records"], row["total_value"]) for row in summary] == [
        ("A", 2, 6010.0),
        ("B", 1, 41.0),
    ]
