# Two commands on a fresh machine: `make run` (the whole product, offline) and `make test`
# (whole suite); `make demo` is the terminal demo alone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# PostgreSQL for the tests that need it (this machine kind runs one; elsewhere those tests skip
# with a reason, except under CI=true where they fail).
export COSTWARDEN_TEST_POSTGRES_URL ?= postgresql://root@127.0.0.1:5432/test

.PHONY: run demo test lint typecheck bench clean install

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m costwarden.showcase

demo: $(STAMP)
	$(PY) -m costwarden.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP)
	bash scripts/test-services.sh
	$(MAKE) --no-print-directory lint typecheck
	rm -f .coverage .coverage.*
	$(VENV)/bin/coverage run -m pytest
	$(VENV)/bin/coverage combine --quiet
	$(VENV)/bin/coverage report

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
