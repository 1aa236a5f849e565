# The commands of the README: `make run` (or `make dev` for coding) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test lint install install-dev clean screenshots

# Reinstall when pyproject.toml changes; the stamp files record what was installed.
$(VENV)/.stamp-run: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.stamp-run

install: $(VENV)/.stamp-run
install-dev: $(VENV)/.stamp-dev

# A local studio on SQLite with the local engine: web server and django-q2 clusters together,
# on http://$(ADDR):$(PORT) (`make run PORT=8001`), which is also SITE_URL, the address the
# emails' links and the demo login point to (unless SITE_URL is set in the environment).
# Fetching from 127.0.0.1 is allowed here so the demo's sample photos can be pasted.
# `make run` serves through gunicorn (productstudio/gunicorn.conf.py), as production does;
# `make dev` through Django's development server, which reloads when the code changes.
ADDR ?= 127.0.0.1
PORT ?= 8000
SITE_URL ?= http://$(ADDR):$(PORT)
STUDIO_ENV = DEBUG=1 SITE_URL=$(SITE_URL) FETCH_ALLOW_PRIVATE_HOSTS=$${FETCH_ALLOW_PRIVATE_HOSTS:-127.0.0.1,localhost}

.PHONY: prepare dev
prepare: install .env
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 SITE_URL=$(SITE_URL) $(PY) manage.py demo_workspace

run: prepare
	$(STUDIO_ENV) $(PY) manage.py runstudio $(ADDR):$(PORT)

dev: prepare
	$(STUDIO_ENV) $(PY) manage.py runstudio --dev $(ADDR):$(PORT)

# This checkout's local settings (git-ignored), written once and never replaced: DEBUG on
# and a development secret of its own, read by every manage.py command from any shell.
.env: | $(VENV)/.stamp-run
	$(PY) -m productstudio.lib.envfile $@

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	DEBUG=1 $(BIN)/mypy .
# The layering contracts in pyproject.toml; no cache, so two runs at once (CI) cannot clash.
	$(BIN)/lint-imports --no-logo --no-cache

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: install-dev lint
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

# The README's screenshots (docs/screenshots/*.png): a throw-away studio on SQLite in a temp
# dir, driven by Playwright with Debian's Chromium (tests/e2e/screenshots.py).
screenshots: install-dev
	$(PY) tests/e2e/screenshots.py

clean:
	rm -rf $(VENV) productstudio.sqlite3* media staticfiles .mypy_cache .pytest_cache .ruff_cache
