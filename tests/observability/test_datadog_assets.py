"""deploy/datadog/: the dashboard and the monitor query exactly the metrics the service sends."""

import json
import re
from typing import Any

from app.config import PROJECT_ROOT

ASSETS = PROJECT_ROOT / "deploy" / "datadog"
METRICS = {
    "pipeline.runs",
    "pipeline.duration",
    "pipeline.stage.duration",
    "pipeline.records_processed",
    "pipeline.errors",
}
QUERY = re.compile(
    r"\b(?:sum|avg|max|min|p\d+):(pipeline\.[a-z_.]+)\{([^}]*)\}(?: by \{([^}]*)\})?"
)


def _queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [q for key, value in node.items() for q in _queries(value)] + (
            [node["query"]] if isinstance(node.get("query"), str) else []
        )
    if isinstance(node, list):
        return [q for item in node for q in _queries(item)]
    return []


def test_the_dashboard_shows_the_five_metrics_by_stage_and_status() -> None:
    dashboard = json.loads((ASSETS / "dashboard.json").read_text())
    found = [m for q in _queries(dashboard["widgets"]) for m in QUERY.findall(q)]
    assert {metric for metric, _, _ in found} == METRICS
    group_bys = {(metric, by) for metric, _, by in found}
    assert {
        ("pipeline.runs", "status"),
        ("pipeline.duration", "status"),
        ("pipeline.stage.duration", "stage"),
        ("pipeline.stage.duration", "stage,status"),
        ("pipeline.records_processed", "stage"),
        ("pipeline.errors", "stage"),
        ("pipeline.errors", "stage,error_type"),
    } <= group_bys
    assert [v["prefix"] for v in dashboard["template_variables"]] == ["env", "service", "stage"]
    assert "pipeline_id" not in json.dumps(dashboard)


def test_the_monitor_alerts_on_the_failure_rate() -> None:
    monitor = json.loads((ASSETS / "monitor-failure-rate.json").read_text())
    assert (monitor["type"], monitor["options"]["thresholds"]) == (
        "query alert",
        {"critical": 20, "warning": 10},
    )
    assert QUERY.findall(monitor["query"]) == [
        ("pipeline.runs", "service:data-pipeline-service,status:failed", "env"),
        ("pipeline.runs", "service:data-pipeline-service", "env"),
    ]
    assert monitor["query"].endswith(") * 100 > 20")
