# The two commands of the quick start, and a few helpers around them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7979

.PHONY: run test install dev bench clean

$(BIN)/strongroom: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

install: $(BIN)/strongroom

$(VENV)/.dev: $(BIN)/strongroom
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

dev: $(VENV)/.dev

run: install
	$(BIN)/strongroom init
	$(BIN)/strongroom serve --port $(PORT)

test: dev
	$(BIN)/python -m pytest -q -n 4 --dist loadfile

# Every performance target in one run (docs/benchmarks.md); `make bench BENCH_ARGS=--quick` for a smoke run.
BENCH_ARGS ?=
bench: dev
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
