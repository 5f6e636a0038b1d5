# Every target sets up what it needs: a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)

REGISTRY ?=
TYPES ?=
PYTHONS ?= 3.11  # the images' Pythons: any of 3.10 3.11 3.12 (make images PYTHONS="3.10 3.11 3.12")
WHEELHOUSE ?= build/wheelhouse
BASE ?= python:3.11-slim-bookworm
FLYTE_PREBUILT := $(VENV)/bin/flyte-prebuilt

.PHONY: demo test unit fast docs images images-gpu gpu-check images-offline publish release local-base bench bench-sql bench-postgres bench-train-ab lint typecheck docker postgres services clean

# uv does not read pip's configuration: hand it the machine's find-links (where a local CPU build of torch is
# offered), so that the dev install takes that wheel instead of the CUDA build and its GBs from the index.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
ifneq ($(strip $(FIND_LINKS)),)
export UV_FIND_LINKS ?= $(FIND_LINKS)
endif

# PYTHONDONTWRITEBYTECODE=1 (set on CI machines) would leave a venv without bytecode, and every process would then
# compile flytekit, pandas and SQLAlchemy from source (import flytekit: 4.6 s instead of ~1 s): compile at install.
export UV_COMPILE_BYTECODE := 1

$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv==0.13.8
	@test -x $(PY) || uv venv -q --python 3.11 $(VENV)
	uv pip install -q --python $(PY) -e ".[dev]"
	@touch $@

demo: $(VENV)/.installed  ## run the quickstart workflow on the embedded SQLite example
	$(PY) examples/sql_quickstart.py

docker:
	bash scripts/ensure-docker.sh

postgres:
	bash scripts/ensure-postgres.sh

services: docker local-base  ## the test services' images (tests/docker-compose.yml: a registry, PostgreSQL), started by pytest-docker
	bash scripts/make-test-services.sh

local-base: docker  ## when $(BASE) cannot be pulled (air-gapped), a local stand-in made with debootstrap
	@docker image inspect $(BASE) >/dev/null 2>&1 || timeout 60 docker pull -q $(BASE) >/dev/null 2>&1 || bash scripts/make-local-base.sh

images: $(VENV)/.installed local-base  ## build every task type's image for each of $(PYTHONS) (index reached with the machine's CA bundle)
	$(FLYTE_PREBUILT) images build $(addprefix --python ,$(PYTHONS))

images-gpu: $(VENV)/.installed local-base  ## the train image's CUDA variant (torch's CUDA build: GBs from the package index; not in make test), within its size budget
	$(FLYTE_PREBUILT) images build train --variant cuda
	$(VENV)/bin/python scripts/check_image_size.py train cuda

gpu-check: images-gpu  ## on a machine with an NVIDIA GPU and the NVIDIA container toolkit: NCCL and training steps in the CUDA image
	$(VENV)/bin/python scripts/gpu_check.py

images-offline: $(VENV)/.installed local-base  ## the same from a wheelhouse, no package index
	$(FLYTE_PREBUILT) images build --wheelhouse $(WHEELHOUSE) --fill-wheelhouse

publish: images  ## push every image to $(REGISTRY) and record digests in the lock file
	@test -n "$(REGISTRY)" || { echo "usage: make publish REGISTRY=host:port/org"; exit 2; }
	$(FLYTE_PREBUILT) images publish --registry $(REGISTRY)

release: $(VENV)/.installed local-base  ## build and push every type's image (or TYPES=...) to $(REGISTRY), record the digests in plugins/kit/images.lock.json, build dist/'s sdist and wheel carrying them (not the CUDA variant: images-gpu)
	@test -n "$(REGISTRY)" || { echo "usage: make release REGISTRY=host:port/org [TYPES='sql script']"; exit 2; }
	$(FLYTE_PREBUILT) images release $(TYPES) --registry $(REGISTRY)

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test module each at a time (--dist loadfile: a module's
# fixtures are shared by its tests, a docs page's blocks run in order): on 2 cores, about half of a serial run waits
# on containers, subprocesses and the network. What it needs is set up side by side first (apt runs one at a time).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

test: $(VENV)/.installed  ## lint, the docs site, the images and services (side by side), then the whole suite: unit, SQLite, PostgreSQL, Docker images, a registry
	$(MAKE) --no-print-directory -j 5 --output-sync=line lint docs images postgres services
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) --durations=20

docs: $(VENV)/.installed  ## the docs site (mkdocs.yml) into build/site, strict: a broken link or a page left out fails
	$(VENV)/bin/mkdocs build --strict

unit: $(VENV)/.installed  ## the unit tests: no service, no image (tests/unit)
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) tests/unit

fast: $(VENV)/.installed postgres  ## everything that needs no Docker: unit, SQLite, PostgreSQL, subprocess emulation
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) -m "not docker"

bench: $(VENV)/.installed postgres  ## SQL (ours vs upstream, 5M rows; PostgreSQL: ours vs upstream, DuckDB, ConnectorX, binary COPY), script environments (uv vs pip, warm start, the environment store), training (TrainTask vs torchrun); writes docs/benchmarks.md
	$(PY) bench/run.py
	$(PY) bench/postgres_run.py
	$(PY) bench/script_env.py
	$(PY) bench/env_store.py
	$(PY) bench/train_task.py

bench-sql: $(VENV)/.installed  ## the SQL section of `make bench` alone (SQLite: ours vs upstream, 5M and 1M rows)
	$(PY) bench/run.py

bench-postgres: $(VENV)/.installed postgres  ## the PostgreSQL section of docs/benchmarks.md alone (bench/postgres_run.py: 2M and 10M rows, about 10 minutes)
	$(PY) bench/postgres_run.py

bench-train-ab: $(VENV)/.installed  ## training throughput A/B: TrainTask vs plain torchrun, 12 paired rounds, median ratio and 95% CI; writes docs/benchmarks.md (run on a quiet machine)
	$(PY) bench/train_task.py --rounds 12

LINTED := plugins executors build_tools tests examples bench setup.py scripts

lint: $(VENV)/.installed typecheck  ## ruff: style, errors, complexity (C901) and formatting; mypy (typecheck)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

# mypy reads the package under its import names: plugins/ and executors/ linked as flytekitplugins.prebuilt(.executors)
# in $(TYPECHECK_TREE) (pyproject's [tool.mypy] mypy_path), as the editable install's import hook maps them
TYPECHECK_TREE := build/typecheck/flytekitplugins/prebuilt
TYPECHECKED := -p flytekitplugins.prebuilt.kit -p flytekitplugins.prebuilt.executors.train $(patsubst plugins/%/spec.py,-m flytekitplugins.prebuilt.%.spec,$(filter-out plugins/kit/spec.py,$(wildcard plugins/*/spec.py)))

typecheck: $(VENV)/.installed  ## mypy ([tool.mypy]) on the authoring kit, every task type's spec and the train executor (a ScriptExecutor[TrainConfig])
	@rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)
	@for entry in plugins/*; do ln -s "$(CURDIR)/$$entry" $(TYPECHECK_TREE)/; done
	@ln -s "$(CURDIR)/executors" $(TYPECHECK_TREE)/executors
	$(VENV)/bin/mypy $(TYPECHECKED)

clean:
	rm -rf $(VENV) build dist images/*/context examples/data
