# Lepton: the two commands are `make run` and `make test`. Nothing needs configuring first.
#
#   make run      venv + requirements (when changed) + translations + migrate + demo (once) + web, worker, dispatcher
#   make test     venv + requirements + translations + Debian chromium (when root and missing) + the whole test suite
#   make translations  compile locale/*/LC_MESSAGES/*.po into the .mo files Django reads (when missing or stale)
#   make lint     ruff check and ruff format --check
#   make screenshots  the browser journeys (tests/browser/journeys), keeping the README's screenshots in docs/screenshots/
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

.PHONY: run test lint format bench migrate clean install chromium translations screenshots

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

# Chromium, a font with Chinese glyphs (without one the zh-hans pages show empty boxes) and one with the top bar's emoji.
chromium:
	@if [ "$$(id -u)" = 0 ] && { [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh | grep -q .; }; then \
		echo "Installing Debian chromium and a Chinese font for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-wqy-microhei fonts-noto-color-emoji; \
	fi

test: install translations chromium
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The journeys save a PNG at each key step; these are the ones docs/screenshots/ keeps (the README shows them).
SCREENSHOTS := j1-02-profile j1-03-recipe j1-05-compare j1-07-try-it j2-02-live-curve j3-01-gantt j3-03-robustness \
	j5-02-fair-share j6-02-profile

screenshots: install translations chromium
	mkdir -p docs/screenshots
	LEPTON_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS) tests/browser/journeys
	cd docs/screenshots && for f in *.png; do case " $(SCREENSHOTS) " in *" $${f%.png} "*) ;; *) rm -f "$$f" ;; esac; done
	@ls -l docs/screenshots

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
