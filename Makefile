# Leads Manager: `make run` starts the app with a demo workspace, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Local runs default to DEBUG; production sets DEBUG=0 and SECRET_KEY in its environment.
export DEBUG ?= 1

.PHONY: install run web migrate seed test lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# htmx and SortableJS come from npm and are served as our own static files (no CDN).
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the UI's front-end libraries (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

# Web + Celery worker + beat (Procfile.dev) on SQLite and an on-disk broker unless
# DATABASE_URL / REDIS_URL say otherwise.
run: seed
	@echo "Starting Leads Manager on http://$(HOST):$(PORT)/ (web, worker, beat). Ctrl-C stops all three."
	HOST=$(HOST) PORT=$(PORT) $(BIN)/honcho -f Procfile.dev start

web: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Needs PostgreSQL (DATABASE_URL) and Redis; SCALE=100k by default, SCALE=1m for the full run.
bench: install
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles db.sqlite3 .pytest_cache .ruff_cache
