# Two commands do everything (see README):  make run   and   make test
# Both create the virtual environment .venv (Python 3.11, pinned by constraints.txt) when needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
# test workers: one more than the cores, because the SLURM test mostly waits for its scheduler
TEST_WORKERS ?= $(shell echo $$(( $(CORES) + 1 )))
CONFIGS ?= config/vignette.yaml config/config.yaml config/assink2016.yaml
RUNLOGS := results/logs
# The package's bytecode, written once (compileall writes it even where PYTHONDONTWRITEBYTECODE is
# set, as in some containers): every pipeline job would otherwise compile the package's modules
# from source when it imports them (about 0.3 s of CPU per job); unchanged files are skipped.
BYTECODE = $(BIN)/python -m compileall -q src

.PHONY: run test lint bench bench-pipeline bench-multiverse env clean-results

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3 setuptools==84.2.1 wheel==0.48.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

## Run the whole pipeline on the shipped example data (both configs), then print a short summary.
## Snakemake's own output goes to results/logs/snakemake_<config>.log (the last lines are shown
## when a run fails); each job's log is in results/<analysis>/logs/, Snakemake's in .snakemake/log/.
run: $(STAMP)
	@$(BYTECODE)
	@mkdir -p $(RUNLOGS)
	@$(BIN)/python -m intervention_meta check-yaml --files $(CONFIGS)
	@for cfg in $(CONFIGS); do \
	  log=$(RUNLOGS)/snakemake_$$(basename $$cfg .yaml).log; \
	  echo "snakemake --configfile $$cfg  (output in $$log)"; \
	  $(BIN)/snakemake --cores $(CORES) --configfile $$cfg > $$log 2>&1 \
	    || { tail -n 40 $$log; echo "FAILED: snakemake --configfile $$cfg (see $$log)"; exit 1; }; \
	done
	@echo
	@$(BIN)/python -m intervention_meta summary --configs $(CONFIGS)

## Run the test suite (includes the real pipeline in a temporary directory).
test: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -q

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/ruff format --check src tests workflow benchmarks
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

bench: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_engine.py

## Time the whole pipeline, empty results to report, per config (benchmarks/README.md).
bench-pipeline: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python benchmarks/bench_pipeline.py --cores $(CORES)

## Fit a multiverse of 10,000+ specifications of the example data on $(CORES) cores.
bench-multiverse: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python benchmarks/bench_multiverse.py --cores $(CORES)

clean-results:
	find results -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
