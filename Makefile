# genrec quick start:  `make demo`  (benchmark on the embedded MovieLens)  and  `make test`.
# Both create .venv on a fresh machine. torch is pinned: an unpinned torch pulls a multi-GB
# CUDA build; 2.13.0 resolves to the CPU wheel.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test lint bench install dev clean browser reproduce verdict-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[als,report]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[als,report,dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/genrec benchmark --dataset movielens-small --models popularity,itemknn,ease,als \
		--seeds 3 --name demo --save-recommendations --overwrite

test: $(VENV)/.installed-dev
	$(BIN)/pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_evaluator.py

# Reproduction checks on Amazon Beauty (../shared/data/amazon-beauty; slow): classical models
# vs the recorded measurement, SASRec vs the TIGER paper's table, TIGER vs its paper. Neural
# checks need a GPU and skip without one. Records -> docs/measurements/reproduction/, then
# the README verdict table and docs/results-history.md are regenerated from them.
reproduce: $(VENV)/.installed-dev
	GENREC_REPRO_DIR=docs/measurements/reproduction $(BIN)/pytest -m slow tests/reproduction -v -rs
	$(BIN)/python benchmarks/results_table.py --update-readme

# The generative-vs-classical verdict in quick mode (< 15 min on a 2-core CPU).
verdict-quick: $(VENV)/.installed-dev
	$(BIN)/genrec benchmark --suite generative-vs-classical --dataset movielens-small --quick \
		--name verdict-quick --overwrite

# Debian's Chromium for the browser tests (report screenshot, web demo); needs root + apt.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 || { echo "no apt-get: install chromium yourself"; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) reports build *.egg-info src/*.egg-info
