"""The API's watchdog: Prefect's view mirrored into the runs still shown pending or running, flow
runs no run has, and the sweep of the run directories."""
