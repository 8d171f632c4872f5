# eps-workflow: two commands on a fresh machine with Python 3.11 and make.
#   make run   — create .venv if missing, install, run the embedded default DAG to its tables
#   make test  — create .venv if missing, run the whole test suite (snakemake --lint included)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
STAMP := $(VENV)/.installed
CORES ?= 2
PYTHON ?= $(shell command -v python3.11 || command -v python3)

.PHONY: run test lint dry-run-voc clean venv

venv: $(STAMP)

# Reinstall when the dependency pins change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --resources gpu=1

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(SNAKEMAKE) --lint

dry-run-voc: $(STAMP)
	$(SNAKEMAKE) -n --configfile config/voc12.yaml

clean:
	rm -rf results logs benchmarks .snakemake
