# The README's two commands: `make demo` and `make test`. Both install what they need themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-test
IDP     := tests/idp
CHP     := tests/hub/chp
CHROMIUM ?= /usr/bin/chromium

.PHONY: install test typecheck demo demo-hub bench screenshots idp-deps hub-deps chromium clean reliability-table

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,flytekit]'
	touch $@

$(IDP)/node_modules/.package-lock.json: $(IDP)/package-lock.json $(IDP)/package.json
	cd $(IDP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

idp-deps: $(IDP)/node_modules/.package-lock.json

# JupyterHub's real proxy (configurable-http-proxy, pinned) for the Hub rig and `make demo-hub`.
$(CHP)/node_modules/.package-lock.json: $(CHP)/package-lock.json $(CHP)/package.json
	cd $(CHP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

hub-deps: $(CHP)/node_modules/.package-lock.json

# Debian's chromium for the browser suite (never `playwright install`).
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' for the browser tests"; fi; }

install: $(STAMP) idp-deps hub-deps

test: install chromium typecheck
	$(BIN)/python -m pytest
	$(BIN)/python -m tests.faults.report

# Re-render README's "Reliability and security" tables from the last run's recorded results.
reliability-table:
	$(BIN)/python -m tests.faults.report

# The package ships py.typed: keep the claim true ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/python -m mypy

demo: install
	$(BIN)/python -m tests.rig.demo

# The same demo on a real JupyterHub (http://127.0.0.1:8000, users alice/wonderland and bob/builder).
demo-hub: install
	$(BIN)/python -m tests.rig.demo_hub

bench: install
	$(BIN)/python -m bench

# Refresh the README's screenshots from the browser suite (a real JupyterLab in Debian chromium).
screenshots: install chromium
	FLYTEAUTH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser -q -k "device_login or paste_back or notebook7"
	FLYTEAUTH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/hub -q -k "no_click or at_once"

clean:
	rm -rf $(VENV) $(IDP)/node_modules $(CHP)/node_modules .pytest_cache .mypy_cache
