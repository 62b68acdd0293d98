# Tollgate: two commands on a fresh machine with python3 and make.
#   make serve   install, build features, train and promote a model if none is champion, serve
#   make test    install (and Debian's chromium for the browser test) and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export BENTOML_DO_NOT_TRACK := true
export BENTOML_HOME := $(CURDIR)/var/bentoml

.PHONY: install serve bootstrap test test-fast bench lock clean

$(UV):
	$(PYTHON) -m pip install --user --quiet uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11
	touch $@

install: .venv/.installed

bootstrap: install
	$(UV) run --frozen tollgate bootstrap

serve: bootstrap
	$(UV) run --frozen tollgate keys bootstrap
	$(UV) run --frozen tollgate replay
	$(UV) run --frozen bentoml serve serving.service:Tollgate --host 127.0.0.1 --port 3000

test: install
	bash .ci/ensure-chromium
	$(UV) run --frozen pytest

test-fast: install
	$(UV) run --frozen pytest -m "not slow and not integration"

bench: install
	bash .ci/ensure-debian-package wrk wrk
	$(UV) run --frozen tollgate bench --json

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf .venv var features/feature_repo/data .pytest_cache
