"""Bodies whose fields would cost pydantic a problem each, or Python a refused conversion: one
clear problem instead, naming the field and the fix."""

import json

import httpx

from app.api.schemas import MOST_UNKNOWN_FIELDS


async def test_a_body_of_many_unknown_fields_is_one_problem(client: httpx.AsyncClient) -> None:
    """110,000 unknown fields in a 1 MB body held the event loop for 2 s: pydantic built a problem
    for each before the first 20 were shown."""
    body = {"name": "wide", **{f"f{i}": 0 for i in range(60_000)}}
    response = await client.post("/api/pipelines", content=json.dumps(body),
                                 headers={"content-type": "application/json"})  # fmt: skip
    message = (
        "body: 60,000 unknown fields ('f0', 'f1', 'f2', …); send only name, description, "
        "record_count, input_path, trigger"
    )
    assert (response.status_code, response.json()["message"]) == (422, message)
    assert len(response.json()["detail"]) == 1


async def test_a_few_unknown_fields_are_each_named(client: httpx.AsyncClient) -> None:
    body = {"name": "few", **{f"f{i}": 0 for i in range(MOST_UNKNOWN_FIELDS)}}
    response = await client.post("/api/pipelines", json=body)
    assert response.status_code == 422
    assert [problem["loc"] for problem in response.json()["detail"]] == [
        ["body", f"f{i}"] for i in range(MOST_UNKNOWN_FIELDS)
    ]


async def test_a_schedule_of_many_unknown_fields_is_one_problem(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/pipelines", json={"name": "timed"})
    body = {"interval_seconds": 60, **{f"f{i}": 0 for i in range(50)}}
    response = await client.put(f"/api/pipelines/{created.json()['id']}/schedule", json=body)
    assert response.status_code == 422
    assert response.json()["message"].startswith("body: 50 unknown fields ('f0', 'f1', 'f2', …)")


async def test_a_record_count_of_thousands_of_digits_is_told_its_bound(
    client: httpx.AsyncClient,
) -> None:
    """Python refused the conversion itself, with advice for the server's code."""
    response = await client.post("/api/pipelines", json={"name": "n", "record_count": "9" * 5000})
    assert (response.status_code, response.json()["message"]) == (
        422,
        "record_count: must be at most 50,000,000 (PIPELINE_MAX_RECORD_COUNT); got a number of "
        "5,000 digits",
    )


async def test_a_record_count_with_leading_zeros_is_read_as_before(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "z", "record_count": "0" * 20 + "1000"}
    response = await client.post("/api/pipelines", json=body)
    assert (response.status_code, response.json()["record_count"]) == (201, 1000)
