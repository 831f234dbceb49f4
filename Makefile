# Two entry points: `make demo` (a sync of a demo repository on SQLite + local storage) and
# `make test`. Each creates the virtual environment it needs on first use: the demo's holds the
# runtime dependencies only (no test extras), the tests' everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_VENV ?= .venv-demo
DEMO_BIN := $(DEMO_VENV)/bin

.PHONY: demo test lint postgres bench mutants clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(DEMO_BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/pip install --quiet --upgrade pip
	$(DEMO_BIN)/pip install --quiet -e .
	touch $@

demo: $(DEMO_BIN)/.installed
	$(DEMO_BIN)/pendingops demo

# Starts the local PostgreSQL cluster when it is installed but not running (tests use it).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
	  { command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1 && \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start && \
	    for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; } || \
	  echo "PostgreSQL is not available: its tests will be skipped (set PENDINGOPS_REQUIRE_POSTGRES=1 to fail instead)"

test: $(BIN)/.installed postgres
	$(BIN)/ruff check pendingops tests benchmarks tools
	$(BIN)/python -m pytest

bench: $(BIN)/.installed postgres
	$(BIN)/python benchmarks/run.py

# The mutation check (minutes, not part of CI): the selected tests pass unmutated, then every
# guarantee-mutant in tools/mutant_catalogue/ must be killed by them (tools/mutants.py runs them).
mutants: $(BIN)/.installed postgres
	$(BIN)/python tools/mutants.py --baseline
	$(BIN)/python tools/mutants.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .hypothesis .ruff_cache
