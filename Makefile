# Madoguchi — the targets a newcomer needs. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install lint format check typecheck messages demo bench-lifecycle bench-api bench-campaign bench-broadcast bench-retention bench-report bench-journeys bench-import bench-inbox bench-inbox-search clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## make run: migrate the SQLite database, load demo data, start web + worker + SMTP sink.
run: $(STAMP)
	mkdir -p $${MADOGUCHI_VAR_DIR:-var}/mail
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	$(PY) manage.py demo_banner
	PYTHONUNBUFFERED=1 $(VENV)/bin/honcho start -f Procfile

## make test: the whole suite on a throwaway PostgreSQL server (both cores;
## a test file stays on one worker). PYTEST_ARGS="-n0 tests/crm" to narrow.
PYTEST_ARGS ?= -n 2 --dist loadfile
test: $(STAMP)
	scripts/with-postgres.sh $(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: the inner loop, everything but the tests marked slow (the
## long fault and browser tests), on the same throwaway PostgreSQL server.
test-fast: $(STAMP)
	scripts/with-postgres.sh $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make typecheck: mypy over every app (settings in pyproject.toml [tool.mypy]).
typecheck: $(STAMP)
	$(PY) -m mypy

check: $(STAMP) lint typecheck
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

## make messages: refresh the ja catalogue from the code, then compile it.
messages: $(STAMP)
	$(PY) manage.py makemessages -l ja --no-obsolete --ignore '.venv/*' --ignore 'bench/*' --ignore 'tests/*'
	cd $(CURDIR) && $(PY) manage.py compilemessages -l ja --ignore '.venv/*'

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data

bench-lifecycle: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/lifecycle.py

bench-api: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/api_ingest.py

bench-campaign: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/campaign_send.py

bench-broadcast: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/broadcast.py

bench-retention: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/retention.py

bench-report: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/report.py

bench-journeys: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/journeys.py

bench-import: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/import.py

bench-inbox: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/inbox.py

bench-inbox-search: $(STAMP)
	scripts/with-postgres.sh $(PY) bench/inbox_search.py

clean:
	rm -rf var/madoguchi.sqlite3* var/mail
