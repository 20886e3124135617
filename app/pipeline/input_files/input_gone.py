"""A pipeline's input file gone from the server when a run reads it: an InputError saying what
to do, which no attempt retries (app/pipeline/retries.py), not a raw FileNotFoundError retried."""

import os
from pathlib import Path

from app.pipeline.input_files.compression import InputError
from app.pipeline.input_files.input_dir import shown
from app.pipeline.store import uploads_dir

UPLOAD_AGAIN = (
    "upload it again (POST /api/pipelines with the file as the form field 'file'), which makes "
    "a new pipeline"
)


def gone(path: Path, *, field: str = "input_path") -> InputError | None:
    """The error for the input file `path` when it is not there (a link to nothing counts), or
    None: an upload removed from the data directory, or a file of PIPELINE_INPUT_DIR removed or
    renamed since the pipeline was made."""
    if os.path.exists(path):
        return None
    if path.is_relative_to(uploads_dir()):
        return InputError(
            field,
            f"the uploaded file is gone from the server ({path}): it was removed from "
            "PIPELINE_DATA_DIR/uploads, by hand or by a restore without it; " + UPLOAD_AGAIN,
        )
    return InputError(
        field,
        f"no file {shown(str(path))!r} in PIPELINE_INPUT_DIR any more: put it back, or create "
        "the pipeline again with the input_path of a file that is there",
    )
