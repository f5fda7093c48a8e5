# make demo   run the self-contained demo
# make test   install everything (Debian packages too) and run the whole test suite
# make check  format, lint, types, import contracts, then the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CODE := $(wildcard src tests bench)
STAMP := $(VENV)/.installed

.PHONY: demo test check lint types contracts format system-deps clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

system-deps:
	@scripts/system-deps

demo: system-deps $(STAMP)
	$(BIN)/pacsguard demo

test: system-deps $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)

format: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

types: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

check: lint types contracts test

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
