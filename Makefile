# Two entry points for a fresh machine:
#   make run    set up .venv and run the default reproduction (config.yaml), build
#               results/report.html and print a summary ending in each study's headline verdict
#   make test   set up .venv and run the whole test suite
# The terminal shows Snakemake's progress and one line per finished job; each job's log
# (results/logs/) has the rest. VERBOSE=1 shows Snakemake's per-job blocks and echoes the jobs'
# log lines (CURVROBUST_ECHO_LOGS=1) as well.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
SMOKE_CONFIG ?= configs/smoke.yaml
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
SNAKEMAKE := $(VENV)/bin/snakemake
ifeq ($(VERBOSE),1)
FILTER := cat
export CURVROBUST_ECHO_LOGS := 1
else
FILTER := $(PY) -u -m curvrobust.workflow.run_summary --filter
endif

# Snakemake 9.27.1's job-rate limiter (default 100/1s) re-runs the scheduler's pass on a timer
# it starts after every pass, on an unbounded semaphore: the passes pile up with each finished
# job (30,616 passes in a 254-job smoke run; snakemake/snakemake PR #3744). A 10-s timespan
# with no real limit cuts Snakemake's own CPU from 30 % to 8 % of a core on the smoke preset
# (benchmarks/workflow_overhead.py); the process may wait up to 10 s on its last timer at exit.
LOCAL_RATE ?= --max-jobs-per-timespan 10000/10s

# run the workflow with the extra arguments $(1), build the report, print the summary
define RUN_AND_SUMMARISE
	@start=$$(date +%s); \
	$(SNAKEMAKE) --cores $(CORES) $(LOCAL_RATE) $(1) 2>&1 | $(FILTER) && \
	{ $(SNAKEMAKE) --report results/report.html $(1) > results/logs/make_report.log 2>&1 || \
	  { tail -n 20 results/logs/make_report.log; \
	    echo "building the report failed; log: results/logs/make_report.log"; exit 1; }; } && \
	$(PY) -m curvrobust.workflow.run_summary --start $$start
endef

# The evidence preset (configs/evidence.yaml merged onto config.yaml; docs/evidence.md): its
# forecast, then the run; the same command resumes an interrupted run. Its first start stores the
# forecast of every job (results/evidence/forecast.json) and every invocation its start and end
# (run_ledger.json): the published page sets them beside the measured job-minutes and wall time.
EVIDENCE_CONFIG := --configfile config.yaml configs/evidence.yaml
EVIDENCE_DIR := results/evidence
NCORES = $(if $(filter all,$(CORES)),$(shell nproc),$(CORES))

.PHONY: setup run smoke report test bench lint clean evidence evidence-plan evidence-rejudge

setup: $(VENV)/.installed

$(VENV)/.installed: envs/requirements.txt envs/requirements-nodeps.txt pyproject.toml
	@echo "setting up $(VENV) (a few minutes; pip's output: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(PY) -m pip install --upgrade pip && \
	   $(PY) -m pip install -r envs/requirements.txt && \
	   $(PY) -m pip install --no-deps -r envs/requirements-nodeps.txt && \
	   $(PY) -m pip install --no-deps -e . ; } > $(VENV)/install.log 2>&1 || \
	 { tail -n 30 $(VENV)/install.log; echo "setup failed; log: $(VENV)/install.log"; exit 1; }
	@touch $@

run: setup
	$(call RUN_AND_SUMMARISE,)

smoke: setup
	$(call RUN_AND_SUMMARISE,--configfile $(SMOKE_CONFIG))

# after a change to the claims engine: re-judge the published evidence, no run needed
evidence-rejudge: setup
	$(PY) -m curvrobust.claims.publish --rejudge docs/evidence.md docs/evidence

evidence-plan: setup
	$(PY) -m curvrobust.workflow.forecast $(EVIDENCE_CONFIG) --cores $(NCORES)

evidence: setup
	@mkdir -p $(EVIDENCE_DIR)/logs
	@test -f $(EVIDENCE_DIR)/forecast.json || $(PY) -m curvrobust.workflow.forecast $(EVIDENCE_CONFIG) \
	  --cores $(NCORES) --forceall --out $(EVIDENCE_DIR)/forecast.json
	@$(PY) -m curvrobust.claims.publish --ledger $(EVIDENCE_DIR)/run_ledger.json start
	@$(SNAKEMAKE) --cores $(CORES) $(LOCAL_RATE) --rerun-incomplete $(EVIDENCE_CONFIG) 2>&1 | \
	  $(FILTER); status=$$?; \
	  $(PY) -m curvrobust.claims.publish --ledger $(EVIDENCE_DIR)/run_ledger.json end; \
	  if [ $$status -eq 0 ]; then echo "published: docs/evidence.md (commit it with docs/evidence/)"; fi; \
	  exit $$status

# rebuild results/report.html alone (from the results the default config describes)
report: setup
	$(SNAKEMAKE) --report results/report.html
	@echo "open results/report.html in a browser"

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/make_page.py

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile rules

clean:
	rm -rf results .snakemake
