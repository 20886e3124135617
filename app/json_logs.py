"""JSON log lines carrying the trace: one object per line with the dd.* attributes Datadog joins
logs to traces by. app.observability switches a process's console handlers to it when an agent
is configured."""

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.config import Settings

RunTrace = Callable[[str], tuple[str, str] | None]
"""A flow run's trace and span id for its lines that no span covers, by its flow run id."""


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the dd.* attributes ddtrace's log injection puts on records."""

    def __init__(self, settings: Settings, run_trace: RunTrace | None = None) -> None:
        super().__init__()
        self.run_trace = run_trace
        self.defaults = {
            "dd.trace_id": "0",
            "dd.span_id": "0",
            "dd.service": settings.dd_service,
            "dd.env": settings.dd_env,
            "dd.version": settings.dd_version,
        }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, default in self.defaults.items():
            entry[key] = getattr(record, key, None) or default
        for key in ("flow_run_id", "task_run_id"):  # set by Prefect's run loggers
            if getattr(record, key, None):
                entry[key] = str(getattr(record, key))
        # a run's line no span covers (Prefect's own, before and after the flow) gets its trace
        untraced = entry["dd.trace_id"] == "0" and "flow_run_id" in entry
        if untraced and self.run_trace and (ids := self.run_trace(entry["flow_run_id"])):
            entry["dd.trace_id"], entry["dd.span_id"] = ids
        if record.exc_info and record.exc_info[0] is not None:
            entry["error.kind"] = record.exc_info[0].__name__
            entry["error.message"] = str(record.exc_info[1])
            entry["error.stack"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def use_json_logs(settings: Settings, run_trace: RunTrace | None = None) -> None:
    """Console handlers (Prefect's, uvicorn's) write JSON lines; Prefect's API handlers stay."""
    formatter = JsonLogFormatter(settings, run_trace)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for index, handler in enumerate(logger.handlers):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and stream in (sys.stdout, sys.stderr):
                json_handler = logging.StreamHandler(stream)
                json_handler.setLevel(handler.level)
                json_handler.setFormatter(formatter)
                for log_filter in handler.filters:
                    json_handler.addFilter(log_filter)
                logger.handlers[index] = json_handler
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        json_handler = logging.StreamHandler(sys.stderr)
        json_handler.setFormatter(formatter)
        root.addHandler(json_handler)
    logging.getLogger("app").setLevel(logging.INFO)
