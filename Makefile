# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs on first use (a venv from requirements-dev.txt, Azurite from package-lock.json).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 7071

.PHONY: deps browser demo test serve bench clean

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

test: deps browser  ## the whole test suite (starts its own Azurite and local host)
	$(BIN)/python -m pytest -q

serve: deps  ## serve the app on http://localhost:$(PORT)/api (starts Azurite if needed)
	PORT=$(PORT) $(BIN)/python -m devhost serve

bench: deps  ## measure; figures printed and written to bench/results.json
	$(BIN)/python -m bench

clean:
	rm -rf .azurite bench/results.json .pytest_cache
