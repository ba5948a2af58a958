# Lepton: the two commands are `make run` and `make test`. Nothing needs configuring first.
#
#   make run      venv + requirements (when changed) + translations + migrate + demo (once) + web, worker, dispatcher
#   make test     venv + requirements + translations + Debian chromium (when root and missing) + the whole test suite
#   make translations  compile locale/*/LC_MESSAGES/*.po into the .mo files Django reads (when missing or stale)
#   make lint     ruff check and ruff format --check
#   make bench    the job-system benchmark (bench/jobs.py; see docs/benchmarks.md)
#   make migrate  apply database migrations
#   make clean    remove var/ (the embedded database, broker and lake), caches and collected static files

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Holds the sha256 of requirements.txt and requirements-nodeps.txt as installed: pip runs again
# only when one of them changes. requirements-nodeps.txt goes in with --no-deps (see its comment).
STAMP := $(VENV)/.requirements.sha256
PYTEST_ARGS ?=

.PHONY: run test lint format bench migrate clean install chromium translations

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	@want="$$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
		echo "Installing requirements.txt and requirements-nodeps.txt into $(VENV)"; \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt \
		&& $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt \
		&& echo "$$want" > $(STAMP); \
	fi

# The .mo catalogues are built, not committed: manage.py compile_translations is pure Python (polib), so a
# machine without GNU gettext builds them too; only a missing or stale one is rebuilt.
translations: install
	$(PY) manage.py compile_translations

migrate: install translations
	@# Names an unreachable DATABASE_URL (password hidden) instead of a driver traceback.
	$(PY) manage.py check --database default --fail-level ERROR
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py load_demo --if-empty
	exec $(PY) manage.py serve_all

chromium:
	@if [ "$$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian chromium for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

test: install translations chromium
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/jobs.py

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache test-results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
