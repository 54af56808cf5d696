# Two entry points for a fresh machine:
#   make run    set up .venv and run the default reproduction (config.yaml)
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all

.PHONY: setup run smoke test bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: envs/requirements.txt envs/requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r envs/requirements.txt
	$(PY) -m pip install --quiet --no-deps -r envs/requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: setup
	$(VENV)/bin/snakemake --cores $(CORES)

smoke: setup
	$(VENV)/bin/snakemake --cores $(CORES) --configfile configs/smoke.yaml

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/make_page.py

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile rules

clean:
	rm -rf results .snakemake
