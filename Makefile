# `make run` serves the app on the embedded database; `make test` runs the whole suite.
# Both set everything up first; `make setup` alone is idempotent.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
CHROMIUM := /usr/bin/chromium

.PHONY: setup run test lint bench browser lock clean

setup: $(VENV)/.installed node_modules/.installed

# The tested versions, from the lock; the project itself on top, without resolving again.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Rewrites requirements.lock from pyproject.toml's ranges (the newest versions they admit).
lock:
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --extra dev --strip-extras --no-header \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	rm -rf .lock-venv

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The browser tests drive Debian's Chromium.
browser:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; }

run: setup
	$(BIN)/python -m webapp

# The quick tests first, then the slow ones (load and properties), then the browser tests on
# their own: Playwright's sync API keeps an event loop of its own running, which the asyncio
# tests must not share. Any run that fails stops the make.
test: setup browser
	$(BIN)/ruff check .
	$(BIN)/mypy webapp benchmarks
	$(BIN)/pytest -m "not browser and not slow"
	$(BIN)/pytest -m slow
	$(BIN)/pytest -m browser

# Measures the floor and the app side by side: delivery, memory, idle cost, posting; prints one
# table of ratios (5 to 10 minutes).
bench: setup
	$(BIN)/python -m benchmarks.fanout

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy webapp benchmarks

clean:
	rm -rf $(VENV) node_modules
