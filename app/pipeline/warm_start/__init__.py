"""The worker's warm start: a zygote that has imported Prefect's engine and the pipeline once, and
forks each flow run the launcher (app/pipeline/launcher.py) hands it."""
