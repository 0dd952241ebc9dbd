# Two entry points: `make report` (the main job) and `make test` (the whole suite).
# Both create .venv on first use; only Python 3.11+, pip and make are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= report

.PHONY: report test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

report: $(VENV)/.installed
	$(BIN)/backprop report -o $(OUT)

test: $(VENV)/.installed
	$(BIN)/ruff check derive numeric reports tests bench backprop examples
	$(BIN)/ruff format --check derive numeric reports tests bench backprop examples
	$(BIN)/pytest -n 2

bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
