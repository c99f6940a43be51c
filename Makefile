# leadscore: `make run` starts the main job on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
LEADS ?= 20000
REPS ?= 12
MONTHS ?= 18
SEED ?= 7
# The demo's period ends today, so "days since last touch" and the goals of this month mean something.
DEMO_START ?= $(shell date -u -d "$(MONTHS) months ago" +%Y-%m-%d 2>/dev/null || echo 2024-01-01)
# Each install target leaves a stamp that depends on pyproject.toml, so a second run reuses the venv.
INSTALL_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
NB_STAMP := $(VENV)/.installed-notebooks

.DEFAULT_GOAL := help
.PHONY: help run test browser mutate lint format bench lab notebooks demo clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALL_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgres]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $@ $(INSTALL_STAMP)

$(NB_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,postgres,notebooks]'
	touch $@ $(DEV_STAMP) $(INSTALL_STAMP)

# Order-only: installing extras (which touches the stamps) must not simulate the demo again, or the data and
# the champion trained on it would no longer match.
$(DEMO)/events.csv: | $(INSTALL_STAMP)
	$(BIN)/leadscore simulate --leads $(LEADS) --reps $(REPS) --months $(MONTHS) --seed $(SEED) --start $(DEMO_START) --out $(DEMO)

demo: $(DEMO)/events.csv  ## Generate the demo CRM (simulated) under data/demo

run: $(INSTALL_STAMP) demo  ## Set up, generate the demo CRM and run the main job
	$(BIN)/leadscore demo --data $(DEMO)

test: $(DEV_STAMP)  ## Set up with the development extras, check the layering and run the whole suite
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The web app's browser tests drive Debian's chromium through Playwright (never `playwright install`: no browser is
# downloaded). `make test` runs them when /usr/bin/chromium is there and skips them, saying so, when it is not;
# this target installs it (as root, or with sudo) and runs them. Screenshots in build/screenshots/.
browser: $(DEV_STAMP)  ## Install Debian's chromium if absent and run the web app's browser tests
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
	$(BIN)/python -m pytest tests/test_web_browser.py

# Mutation testing of the point-in-time code ([tool.mutmut] in pyproject.toml: features, history encoding, labels
# and training set, owner context) against tests/test_features.py and tests/test_training_set.py, from scratch
# (mutants/ is rebuilt); then the planted look-ahead leaks of tools/plant_leaks.py. The report
# (every mutant not killed, as file:line and the change) goes to build/mutation/; the README has the last one.
# MUTATE_JOBS workers (default 2), at most MUTATE_EXAMPLES examples per Hypothesis property (default 20; 0: as
# written); the last run took 2,579 CPU-seconds, about 27 minutes on two shared cores (README). One mutant again:
# `MUTMUT_MAX_EXAMPLES=20 .venv/bin/mutmut run 'leadscore.features.builder.x__calls__mutmut_7'`, then
# `.venv/bin/python tools/mutation_report.py` (the report alone).
MUTATE_JOBS ?= 2
MUTATE_EXAMPLES ?= 20

mutate: $(DEV_STAMP)  ## Mutation testing of the point-in-time code; report in build/mutation/
	$(BIN)/python tools/mutation_report.py --run $(MUTATE_JOBS) --max-examples $(MUTATE_EXAMPLES)
	@echo "== planted leaks"
	$(BIN)/python tools/plant_leaks.py

lint: $(DEV_STAMP)  ## ruff check, format check and the layering contracts (import-linter)
	$(BIN)/lint-imports
	$(BIN)/ruff check src api tests benchmarks tools
	$(BIN)/ruff format --check src api tests benchmarks tools

format: $(DEV_STAMP)  ## ruff format and autofix
	$(BIN)/ruff format src api tests benchmarks
	$(BIN)/ruff check --fix src api tests benchmarks

bench: $(DEV_STAMP)  ## Run every benchmark (each prints one JSON object last)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lab: $(NB_STAMP)  ## Start JupyterLab with the project's environment
	$(BIN)/jupyter lab notebooks/

# Runs every notebook top to bottom on the full demo (data/demo, made by `demo` with LEADS/REPS/MONTHS/SEED; the
# same sizes are passed on should a notebook have to make it) and writes HTML copies, outputs included, to
# build/notebooks/ (not committed: /build/ is in .gitignore). The .ipynb files are left as they are, without
# outputs. Runs and models go to the notebooks' own MLflow store, models/notebooks/mlflow.db, unless
# MLFLOW_TRACKING_URI is set; 05-real-data reads ../shared/data (LEADSCORE_SHARED_DATA overrides it) and is
# skipped, with what to download and where, when that data set is absent.
# About 5 minutes on two busy cores.
NB_BUILD := build/notebooks
NB_ENV := LEADSCORE_NB_DATA=../$(DEMO) LEADSCORE_NB_LEADS=$(LEADS) LEADSCORE_NB_REPS=$(REPS) \
	LEADSCORE_NB_MONTHS=$(MONTHS) LEADSCORE_NB_SEED=$(SEED)

notebooks: $(NB_STAMP) demo  ## Run the notebooks on the full demo; HTML copies in build/notebooks/
	@mkdir -p $(NB_BUILD)
	@cd notebooks && for nb in [0-9][0-9]-*.ipynb; do \
		echo "== $$nb"; \
		if [ "$$nb" = 05-real-data.ipynb ] && ! ../$(BIN)/python -m leadscore.data.public uci_bank_marketing; then \
			echo "   skipped: it reads a public data set this checkout lacks (above: what to get and where)"; \
			continue; \
		fi; \
		$(NB_ENV) ../$(BIN)/jupyter nbconvert --to html --execute --output-dir ../$(NB_BUILD) \
			--ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=3600 "$$nb" || exit 1; \
	done
	@echo "HTML copies in $(NB_BUILD)/"

clean:  ## Remove the venv, the demo data and the local model store
	rm -rf $(VENV) data build mutants models/mlflow.db models/artifacts
