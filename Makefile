# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs on first use (a venv from requirements-dev.txt, Azurite from package-lock.json).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 7071

.PHONY: deps browser demo lint test serve bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

browser:  ## Debian's chromium, for the dashboard's headless screenshot test
	scripts/ensure-chromium

demo: deps  ## run sample findings through the app on Azurite and show the ranked backlog
	$(BIN)/python -m devhost demo

lint: deps  ## ruff and mypy over shared/, function_app.py, devhost/ and bench/ (rules in pyproject.toml); any finding fails
	VENV=$(VENV) scripts/lint

# Two workers, each with its own Azurite and hosts; a file stays on one worker (its module fixtures are set up
# once). On the 2-core CI machine, CI=true: 844 tests in 267 s against 384 s in one process.
test: deps browser  ## the whole test suite (starts its own Azurite and local host per worker)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

serve: deps  ## serve the app on http://localhost:$(PORT)/api (starts Azurite if needed)
	PORT=$(PORT) $(BIN)/python -m devhost serve

bench: deps  ## measure; figures printed and written to bench/results.json
	$(BIN)/python -m bench

clean:
	rm -rf .azurite bench/results.json .pytest_cache
