"""The bare-Prefect anchor: a flow of five empty tasks, deployed on the same pool and worker.

`make bench` measures this service's trigger→completed latency against it (bench/latency.py).
"""

from prefect import flow, task


@task
def generate() -> None:
    """Empty, as are the four below: the anchor measures Prefect alone."""


@task
def ingest() -> None: ...


@task
def process() -> None: ...


@task
def transform() -> None: ...


@task
def export() -> None: ...


@flow(name="Bare Pipeline")
def bare_pipeline() -> None:
    generate()
    ingest()
    process()
    transform()
    export()
