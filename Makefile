# `make run` serves the app on the embedded database; `make test` runs the whole suite.
# Both set everything up first; `make setup` alone is idempotent.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
CHROMIUM := /usr/bin/chromium

.PHONY: setup run test lint bench browser clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The browser tests drive Debian's Chromium.
browser:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; }

run: setup
	$(BIN)/uvicorn webapp.app:app --host 127.0.0.1 --port $${PORT:-8000} --no-proxy-headers

# The browser tests run on their own: Playwright's sync API keeps an event loop of its own
# running, which the asyncio tests must not share.
test: setup browser
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not browser"
	$(BIN)/pytest -m browser

# Measures delivery latency, memory, idle cost and posting; prints one table (under 5 minutes).
bench: setup
	$(BIN)/python -m benchmarks.fanout

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules
