# Two commands on a fresh machine with only Python 3.11+:  make run  /  make test
#
# Both create .venv if it is missing and (re)install the project into it whenever
# pyproject.toml is newer than the stamp file, so dependencies never go stale.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 5000
# gunicorn, not `flask run`: several worker processes share one database like in production,
# which is what the later stages (flags read by every worker, SQLite in WAL mode) must survive.
# gunicorn.conf.py holds the request line and header limits docs/api.md promises.
WORKERS ?= 2
# pytest-xdist: one worker per core; each worker gets its own PostgreSQL database.
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: run venv migrate seed test lint format bench stress clean distclean

run: migrate seed
	@echo "Serving the shop on http://$(HOST):$(PORT)  (Ctrl-C to stop)"
	$(BIN)/gunicorn --config gunicorn.conf.py --workers $(WORKERS) --bind $(HOST):$(PORT) \
		--access-logfile - 'legacy_app:create_app()'

# The virtualenv with the project installed, for running its tools by hand.
venv: $(STAMP)

# DATABASE_URL (default: the SQLite file instance/shop.db) is read by alembic's env.py and
# by the app in the same way, so both always touch the same database.
migrate: $(STAMP)
	$(BIN)/alembic upgrade head

# The seed is a bulk load that bypasses the app; the read models are rebuilt after it.
seed: $(STAMP)
	@echo "Seeding demo data (unless there is some) and building the read models ..."
	$(BIN)/flask --app legacy_app seed --if-empty
	$(BIN)/flask --app legacy_app cqrs backfill

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Legacy vs new over real HTTP, on SQLite and (when reachable) PostgreSQL, in one run.
ORDERS ?= 100000
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench --orders $(ORDERS) $(BENCH_ARGS)

# Attacks through real gunicorn servers (4 workers) on SQLite and PostgreSQL: oversell, worker
# kills, flag flips, OpenAPI fuzzing, a missing or locked read model, lock waits; prints a
# verdict per promise and writes stress/out/results.json (docs/reliability.md). About 10
# minutes on 2 cores; `make test` runs the --quick version (tests/e2e/test_stress_quick.py).
# Under CI=true PostgreSQL is required, never skipped.
STRESS_ARGS ?=
stress: $(STAMP)
	$(PY) -m stress $(STRESS_ARGS)

$(PY):
	@echo "Creating the virtualenv $(VENV) ..."
	$(PYTHON) -m venv $(VENV)

# pip is quiet: say what is going on, and that it is worth the wait.
$(STAMP): pyproject.toml | $(PY)
	@echo "Installing the project and its tools into $(VENV) (about a minute, once) ..."
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build bench/out stress/out *.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

# Also forgets the virtualenv and the local SQLite database.
distclean: clean
	rm -rf $(VENV) instance
