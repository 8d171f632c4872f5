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

# GPUs Snakemake hands out: the ones nvidia-smi lists, 0 on a CPU-only machine. With 0 the GPU
# rules run on the CPU side by side (their gpu=1 is clamped to 0), as many as --cores allows:
# these small nets scale poorly over threads (PFAN: 1.17x on 2 threads), so two 1-thread jobs
# at once nearly halve the wall time of `make run` against one GPU token serialising them.
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)

run: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --resources gpu=$(or $(GPUS),0)
	$(SNAKEMAKE) --report results/report.html
	$(PY) -m wsss.readme README.md results/tables

test: $(STAMP)
	$(PY) -m pytest -q -m "not slurm"

lint: $(STAMP)
	$(SNAKEMAKE) --lint

dry-run-voc: $(STAMP)
	$(SNAKEMAKE) -n --configfile config/voc12.yaml

clean:
	rm -rf results logs benchmarks .snakemake

# ---- ablations: the paper's tau, lambda and saliency-source ablations (one EPS run per grid point) ----
# Builds the default DAG and every ablation (points equal to the configured run reuse it), then the
# report of both. Grids: the `ablation` config section. Not part of `make run`.
.PHONY: ablations
ablations: $(STAMP)
	$(SNAKEMAKE) all ablations --cores $(CORES) --resources gpu=$(or $(GPUS),0)
	$(SNAKEMAKE) all ablations --report results/report.html

# ---- bench (evaluation stage): throughput of each stage on the embedded benchmark -------------
# Builds the prepared synthetic dataset if needed, then measures evaluation / CRF (1 vs N
# processes), CAM inference images/s and training iterations/s (CUDA when present) into
# results/bench/bench.csv with the machine description. It measures; it asserts nothing.
BENCH_CONFIG ?= config/config.yaml
BENCH_PREPARED ?= resources/synthetic/prepared
.PHONY: bench
bench: $(STAMP)
	$(SNAKEMAKE) $(BENCH_PREPARED) --cores $(CORES) --configfile $(BENCH_CONFIG)
	$(PY) -m wsss.bench --config $(BENCH_CONFIG) --prepared $(BENCH_PREPARED) --processes $(CORES) \
		--out results/bench/bench.csv

# ---- seeds: the embedded default over seeds x data seeds x CPU kernel sets (slow: 12 full runs) ----
# Writes results/bench/seeds.csv (cell x method x stage x metric) and seeds_summary.csv (mean, std and
# the minimum EPS-CAM margin over the cells). See src/wsss/seeds.py.
.PHONY: seeds
seeds: $(STAMP)
	$(PY) -m wsss.seeds --out results/bench --cores $(CORES)

# ---- scale-out (stage: slurm) ----------------------------------------------------------------
# A real single-node SLURM on localhost runs the tiny config through profiles/slurm (needs root;
# installs slurmctld/slurmd/slurm-client/munge with apt-get when missing; ~1-2 min).
# WSSS_REQUIRE_SLURM=1: a missing prerequisite fails instead of skipping. See docs/slurm.md.
.PHONY: test-slurm
test-slurm: $(STAMP)
	WSSS_REQUIRE_SLURM=1 $(PY) -m pytest -q -m slurm tests/test_slurm.py
