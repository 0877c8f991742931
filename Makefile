# The README's two commands: `make demo` and `make test`. Both install what they need themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-test
IDP     := tests/idp
CHP     := tests/hub/chp
CHROMIUM ?= /usr/bin/chromium

.PHONY: install test typecheck docs wheel-test demo demo-hub bench screenshots idp-deps hub-deps chromium clean reliability-table

# The page the fault-injection suite's tables are rendered into (between its reliability markers).
RELIABILITY_PAGE := docs/reliability.md

# _version.py too: the editable install's metadata carries the version it was installed with
$(STAMP): pyproject.toml flyteauth_jupyter/_version.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,flytekit,docs]'
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

# pytest runs tests/packaging too: the wheel in a fresh venv (test_wheel.py) and the docs checks (test_docs.py)
test: install chromium typecheck docs
	$(BIN)/python -m pytest
	$(BIN)/python -m tests.faults.report --target $(RELIABILITY_PAGE)

# The documentation site (mkdocs.yml) into site/, every warning an error; docs/_tools/hooks.py fails it
# on a missing docstring of a pinned name and on anything the built site would load from another origin.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# Only the packaging test: sdist + wheel, twine check, contents, the wheel in a fresh venv.
wheel-test: $(STAMP)
	$(BIN)/python -m pytest tests/packaging/test_wheel.py -q

# Re-render the "Reliability and security" page's tables from the last run's recorded results.
reliability-table:
	$(BIN)/python -m tests.faults.report --target $(RELIABILITY_PAGE)

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

# Refresh the documentation's screenshots from the browser suite (a real JupyterLab in Debian chromium).
screenshots: install chromium
	FLYTEAUTH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser -q -k "device_login or paste_back or notebook7"
	FLYTEAUTH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/hub -q -k "no_click or at_once"

clean:
	rm -rf $(VENV) $(IDP)/node_modules $(CHP)/node_modules .pytest_cache .mypy_cache site dist
