# The two commands of the README: `make demo` and `make test` each set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo_out

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/microvae synth $(DEMO)/synthetic --n 4 --shape 512x512 --phenotype mixed --seed 0 --labels
	$(BIN)/microvae synth $(DEMO)/synthetic-stacks --n 2 --shape 16x256x256 --phenotype tubular --seed 1
	$(BIN)/microvae inspect $(DEMO)/synthetic/synth_000.tif $(DEMO)/synthetic/synth_000_gt.tif $(DEMO)/synthetic-stacks/synth_000.tif

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
