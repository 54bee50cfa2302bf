# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench browser lint build clean

$(STAMP): requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@command -v java >/dev/null || { echo "Java 17 is required for local Spark (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sfn-mlops demo

# The approval-page test drives Debian's chromium; CI installs it, a laptop is told how.
browser:
	@command -v chromium >/dev/null && exit 0; \
	if [ "$$CI" = "true" ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "WARNING: chromium could not be installed; the browser test will be skipped"; \
	else \
		echo "NOTE: 'apt-get install chromium' to run the approval-page browser test"; \
	fi

test: $(STAMP) browser
	$(PY) -m ruff check .
	ASL_COVERAGE_REQUIRED=1 $(PY) -m pytest

bench: $(STAMP) browser
	$(PY) bench/run.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

build: $(STAMP)
	$(VENV)/bin/sam build --template-file template.yaml

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis demo-output
