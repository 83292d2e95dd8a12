# The two commands of the README: `make demo` and `make test` each set up .venv first
# (microvae with its dev extra, and the napari plugin in napari_plugin/).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo_out

.PHONY: demo test docs install system-deps clean

$(STAMP): pyproject.toml napari_plugin/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]" -e napari_plugin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/microvae demo --out $(DEMO)

# the Debian packages napari's tests need (.ci/packages.txt): installed when root with apt-get,
# else one line saying what to install (those tests then skip)
system-deps:
	@bash .ci/system-deps

# the docs site (mkdocs-material, mkdocstrings) into site/; strict: a broken link or reference
# fails (tests/test_docs.py builds it the same way, so make test does too)
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

test: $(STAMP) system-deps
	$(BIN)/npe2 validate --imports napari-microvae
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache site
