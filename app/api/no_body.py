"""Writes that take no body: trigger, retry, cancel, delete and a schedule's pause, resume and
removal act on the pipeline (or its schedule) as it is, so a body went unread: a trigger sent
`{"record_count": 5}` made a run of the pipeline's own settings all the same.

No body, an empty one and `{}` are accepted: `{}` asks for nothing (clients that always send a
JSON object send it); anything else is a 422 naming each field sent, or `body`, and the fix."""

import json
from typing import Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from app.api.schemas import MOST_UNKNOWN_FIELDS
from app.echoed import cut, first_names

_OTHER_SETTINGS = (
    "send none, or, to run with other settings, create a pipeline with them (POST /api/pipelines)"
)
_CHANGE_SCHEDULE = "to change the schedule, set it again (PUT /api/pipelines/{id}/schedule)"
WHY = {
    "trigger": f"trigger takes no body: the run uses the pipeline's own settings; {_OTHER_SETTINGS}",
    "retry": f"retry takes no body: the new run uses the pipeline's own settings; {_OTHER_SETTINGS}",
    "cancel": "cancel takes no body: it cancels every run of the pipeline in flight; send none",
    "delete": (
        "delete takes no body: it deletes the pipeline with its runs, their files and its "
        "schedule; send none"
    ),
    "pause": (
        "pause takes no body: it stops the pipeline's schedule making runs until resumed; "
        f"send none; {_CHANGE_SCHEDULE}"
    ),
    "resume": (
        "resume takes no body: the pipeline's schedule makes runs again, as it was set; "
        f"send none; {_CHANGE_SCHEDULE}"
    ),
    "delete_schedule": (
        "removing a schedule takes no body: it removes the pipeline's schedule and its runs "
        "still waiting; send none"
    ),
}


def _problems(body: bytes, why: str) -> list[dict[str, Any]]:
    """What is wrong with `body`, one problem a field (none when it asks for nothing)."""
    if not body.strip():
        return []
    try:
        sent = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deeply
        sent = None
    if sent == {}:
        return []
    problem = {"type": "body_not_taken", "msg": why}
    if not isinstance(sent, dict):
        return [{**problem, "loc": ("body",)}]
    if len(sent) > MOST_UNKNOWN_FIELDS:  # one problem, as few_unknown_fields says it
        first = first_names(list(sent))
        return [{**problem, "loc": ("body",), "msg": f"{len(sent):,} fields ({first}, …): {why}"}]
    return [{**problem, "loc": ("body", cut(key))} for key in sent]  # a long name cut short


def no_body(action: str) -> Any:
    """A route dependency refusing any body but none or `{}` for `action` (a key of WHY)."""
    why = WHY[action]

    async def refuse_a_body(request: Request) -> None:
        pipeline_id = request.path_params.get("pipeline_id")  # the fix names this pipeline's URL
        said = why if pipeline_id is None else why.replace("{id}", str(pipeline_id))
        if problems := _problems(await request.body(), said):
            raise RequestValidationError(problems)

    return Depends(refuse_a_body)
