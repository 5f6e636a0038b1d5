# Every target sets up what it needs: a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)

.PHONY: demo test unit images bench lint docker postgres clean

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

images: $(VENV)/.installed docker  ## build every task type's image, tagged for this package version
	for t in $$(ls images); do bash scripts/build-image.sh $$t || exit 1; done

test: $(VENV)/.installed images postgres  ## the whole suite: unit, SQLite, PostgreSQL, Docker images
	$(VENV)/bin/pytest -q -p no:cacheprovider

unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/unit

bench: $(VENV)/.installed  ## ours vs upstream, 5M rows SQLite -> parquet; writes docs/benchmarks.md
	$(PY) bench/run.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check plugins executors tests examples bench

clean:
	rm -rf $(VENV) build dist images/*/context examples/data
