# The two commands of the README: `make up` starts the whole stack, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin

export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: up down test install install-dev uv lint typecheck deploy migrate doctor chaos clean bench-observability bench-data bench

# uv, through pip, when the machine lacks it. A system Python that is "externally managed"
# (PEP 668: Debian 12, Ubuntu 24.04) refuses a plain install: uv then goes into the user's site.
PIP_INSTALL := $(PYTHON) -m pip install --quiet --disable-pip-version-check
uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PIP_INSTALL) uv 2>/dev/null || \
		$(PIP_INSTALL) --user --break-system-packages uv || \
		{ echo "make: uv is missing and pip cannot install it: install uv (pipx install uv, or" \
			"apt-get install python3-pip) and run make again" >&2; exit 1; }

# --inexact: `make up` beside a running `make test` must not uninstall pytest under it.
# --compile-bytecode: every process (server, workers, each flow run, the CLI) then imports Prefect
# and the rest from .pyc; without it, a Python that may not write them (PYTHONDONTWRITEBYTECODE)
# compiles them again in each process: `import prefect.flow_engine, app.main` took 8.6 s, 1.9 s
# compiled (7 s once for 9,181 files; 0.2 s at each later make)
# The service's own modules too (0.1 s): each process imports ~150 of them, and compiled them again.
UV_SYNC := $(UV) sync --frozen --compile-bytecode
COMPILE_OWN := $(BIN)/python -m compileall -q app migrations
install: uv  ## the service's dependencies, exactly as locked
	$(UV_SYNC) --no-dev --inexact
	@$(COMPILE_OWN)

install-dev: uv
	$(UV_SYNC) --extra dev
	@$(COMPILE_OWN)

# The local stack's ports and state directory (its SQLite database, Prefect home, run files, logs),
# the same for `make up`, `make doctor` and `make down`; unset, 8000, 4200 and var:
#   make up API_PORT=8001 PREFECT_PORT=4201 STATE_DIR=var-2
# STATE_DIR in single quotes, each of its own quotes closed, escaped and reopened: a path with a
# space or a quote in it is one argument to the shell, never shell syntax.
QUOTED_STATE_DIR = '$(subst ','\'',$(STATE_DIR))'
STACK_ARGS = $(strip $(if $(API_PORT),--api-port=$(API_PORT)) \
	$(if $(PREFECT_PORT),--prefect-port=$(PREFECT_PORT)) $(if $(STATE_DIR),--state-dir=$(QUOTED_STATE_DIR)))

up: install  ## Prefect server + migrations + pool/deployment + worker + API; Ctrl-C (or make down) stops all
	$(BIN)/python -m app.stack.commands $(STACK_ARGS)

down:  ## stops the stack `make up` started (in another terminal, in the background, or killed and left running)
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m app.stack.commands down $(STACK_ARGS); \
	else echo "no $(VENV): no stack of this checkout can be running"; fi

# the database of the stack of STATE_DIR (var), as `make up` and `make doctor` find it: its
# SQLite file unless DATABASE_URL is set (the environment or .env)
migrate: install
	$(BIN)/python -m app.stack.migrate $(STACK_ARGS)

deploy: install
	$(BIN)/python app/pipeline/deploy.py

lint: install-dev
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench

typecheck: install-dev
	$(BIN)/mypy app bench

# test processes for `make test` (pytest-xdist); the shared end-to-end stacks stay in one of them;
# 3 on 2 cores: the end-to-end tests mostly wait on their stacks (README, Tests)
TEST_WORKERS ?= 3
test: install-dev lint typecheck  ## the whole suite: unit, API on SQLite + PostgreSQL, end to end
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# with STATE_DIR, that stack's state directory instead of var/, once app/stack/clean.py has
# checked it is one (never /, $HOME or this checkout); its own Python without the venv
CLEAN_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
clean: down  ## stops the stack, then deletes its state directory (var/, or STATE_DIR: database, Prefect's home, run files, logs) and the caches
	$(if $(STATE_DIR),$(CLEAN_PYTHON) -m app.stack.clean $(QUOTED_STATE_DIR),rm -rf var)
	rm -rf .pytest_cache .mypy_cache .ruff_cache

chaos: install-dev  ## the load test: a burst of BURST_TRIGGERS (200) triggers, 2 workers, PostgreSQL
	$(BIN)/pytest -m chaos -s

doctor: install  ## checks the stack's database, Prefect, pool, worker, deployment, stranded runs; prints fixes
	$(BIN)/python -m app.stack.commands doctor $(STACK_ARGS)

bench: install-dev  ## latency vs bare Prefect, API vs bare FastAPI, burst makespan; smoke: BENCH_ARGS=--smoke
	$(BIN)/python -m bench.service $(BENCH_ARGS)

bench-observability: install-dev  ## Datadog on vs off: trigger→completed and stage time (not in CI)
	$(BIN)/python -m bench.observability

BENCH_SIZES ?= 1000000 10000000
bench-data: install-dev  ## stages vs one Polars query vs row-wise Python; smoke: BENCH_SIZES=10000 BENCH_OUTPUT=/tmp/d.json
	BENCH_SIZES="$(BENCH_SIZES)" $(BIN)/python -m bench.data
