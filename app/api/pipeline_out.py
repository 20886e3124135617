"""A pipeline and its runs as the API shows them: their rows, and what the API says of them that
no column holds (a run's rejected records, its flow run's link, where the records come from)."""

from pathlib import Path

from app.api.schemas import InputSource, PipelineOut, RunOut
from app.models import Pipeline, PipelineRun
from app.pipeline import orchestrator
from app.pipeline.store import input_file, uploads_dir


def input_source(found: Path | None) -> InputSource:
    """Where a pipeline's records come from, told by where its input file is (store.input_file):
    a file kept in the uploads directory is an upload (a create refuses a path there:
    app/pipeline/input_files/input_dir.py), any other a file the user named, none generated
    records."""
    if found is None:
        return "generated"
    return "upload" if found.is_relative_to(uploads_dir()) else "path"


def run_out(run: PipelineRun) -> RunOut:
    out = RunOut.model_validate(run)
    rejected = [s.records_rejected for s in run.stages if s.records_rejected is not None]
    out.records_rejected = sum(rejected) if rejected else None
    if run.prefect_flow_run_id:
        out.prefect_flow_run_url = orchestrator.flow_run_url(run.prefect_flow_run_id)
    return out


def pipeline_out(pipeline: Pipeline, run: PipelineRun | None, in_flight: int) -> PipelineOut:
    found = input_file(pipeline.input_path) if pipeline.input_path else None
    return PipelineOut(
        id=pipeline.id,
        name=pipeline.name,
        description=pipeline.description,
        record_count=pipeline.record_count,
        input_path=str(found) if found else None,
        input_format=pipeline.input_format,
        input_source=input_source(found),
        created_at=pipeline.created_at,
        status=run.status.value if run else "created",
        latest_run=run_out(run) if run else None,
        runs_in_flight=in_flight,
    )
