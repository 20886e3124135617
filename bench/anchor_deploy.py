"""Deploy the bare-Prefect anchor twice on pool `default`: Prefect's own start and the warm one."""

from pathlib import Path
from typing import Any, cast

from prefect import Flow, flow

from app.pipeline.deploy import job_variables

HERE = Path(__file__).resolve().parent


def main() -> None:
    source = cast(
        "Flow[..., Any]", flow.from_source(source=HERE, entrypoint="anchor_flow.py:bare_pipeline")
    )
    for name, warm in (("bare-anchor", False), ("bare-anchor-warm", True)):
        source.deploy(
            name=name,
            work_pool_name="default",
            job_variables=job_variables(warm_start=warm),
            print_next_steps=False,
        )


if __name__ == "__main__":
    main()
