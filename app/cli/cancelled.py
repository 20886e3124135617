"""What `pipeline cancel` cancelled: the API cancels every run in flight but answers with the
newest, so the others are read before the cancel and checked after it."""

from collections.abc import Collection, Iterator
from typing import Any

from app.cli.client import Api, CliError

PAGE_SIZE = 100  # the API's largest page of runs
# the newest runs searched for the ones in flight: those are the newest as a rule, and a count
# that one ending meanwhile leaves short must not read a scheduled pipeline's thousands of runs
# before the cancel is sent
MAX_PAGES = 3
UNFINISHED = frozenset({"pending", "running"})


def in_flight(client: Api, pipeline_id: int) -> list[int]:
    """The pipeline's pending or running runs when there is more than one (the cancel's answer
    names one), among its newest MAX_PAGES pages of runs; none when they cannot be read: the
    cancel matters, not this report of it."""
    try:
        expected = client.get(f"/api/pipelines/{pipeline_id}")["runs_in_flight"]
        if expected < 2:
            return []
        found: list[int] = []
        for run in _runs(client, pipeline_id, pages=MAX_PAGES):
            if run["status"] in UNFINISHED and run["id"] not in found:
                found.append(run["id"])
                if len(found) == expected:
                    break
        return found
    except CliError:  # the cancel's own request reports the API's refusal or absence
        return []


def now_cancelled(client: Api, pipeline_id: int, run_ids: Collection[int]) -> set[int]:
    """Which of `run_ids` are cancelled now; one that ended on its own meanwhile is not."""
    cancelled: set[int] = set()
    if not run_ids:
        return cancelled
    oldest = min(run_ids)
    for run in _runs(client, pipeline_id):
        if run["id"] in run_ids and run["status"] == "cancelled":
            cancelled.add(run["id"])
        if run["id"] <= oldest:
            break
    return cancelled


def _runs(client: Api, pipeline_id: int, *, pages: int | None = None) -> Iterator[dict[str, Any]]:
    """The pipeline's runs, newest first, a page at a time (the first `pages` pages)."""
    page = 1
    while True:
        body = client.get(f"/api/pipelines/{pipeline_id}/runs", page=page, page_size=PAGE_SIZE)
        yield from body["items"]
        if not body["items"] or page * PAGE_SIZE >= body["total"] or page == pages:
            return
        page += 1


def runs_text(run_ids: Collection[int]) -> str:
    """`run 4`, `runs 3 and 4`, `runs 2, 3 and 4`."""
    ids = [str(run_id) for run_id in sorted(run_ids)]
    if len(ids) == 1:
        return f"run {ids[0]}"
    return f"runs {', '.join(ids[:-1])} and {ids[-1]}"
