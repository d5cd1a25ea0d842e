# The two commands of the README: `make demo` and `make test`. Each sets everything up first.
# `make check`: lint and the unit tests only (a few minutes), for the edit-test loop.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint format clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlops train

# --durations: the slowest tests in every log (CI's included), to see where the time goes.
# -n: worker processes (pytest-xdist), each taking a whole test module at a time, the slowest
# modules first (tests/conftest.py): most tests wait on servers and subprocesses, so two
# workers keep two cores busy. `make test TEST_WORKERS=0` runs serially, for debugging.
TEST_WORKERS ?= 2
PARALLEL = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint
	$(BIN)/pytest $(PARALLEL) --durations=30

check: lint
	$(BIN)/pytest tests/unit $(PARALLEL) --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_validation.py
	$(BIN)/python tests/benchmarks/bench_pipeline.py
