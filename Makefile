# The two set-up commands of the README:
#   make reproduce   install everything, rebuild the dataset from data/raw (dvc repro)
#   make test        install everything, run the test suite
# Both create .venv from the pinned lock file (requirements.lock) with uv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.9
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: reproduce test install lock chromium

reproduce: install
	dvc repro
	dvc metrics show

test: install chromium
	pytest -q --durations=15  # the slowest tests listed: CI must stay under 15 minutes

install: $(VENV)/.installed web_assets/node_modules/.installed

# The CSS/JS that Data Docs and `dvc plots show` pages load, at the versions they ask
# for, so the pages work offline (see web_assets/package.json).
web_assets/node_modules/.installed: web_assets/package.json web_assets/package-lock.json
	cd web_assets && npm ci --silent
	touch $@

# The browser of the page tests (tests/test_views.py): Debian's, installed as root when missing.
chromium: /usr/bin/chromium
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# compileall: every library's bytecode is written at install (uv does not by default, and its
# --compile-bytecode skips a venv that is already up to date), so a stage's process loads GX,
# Polars, DVC... instead of compiling their sources at each start, which it does where
# PYTHONDONTWRITEBYTECODE is set (containers, CI) or site-packages is read-only: `corpus
# validate --drop` of a 3k drop 11.8 -> 6.1 CPU s (benchmarks/README.md, "A new drop").
$(VENV)/.installed: requirements.lock pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --require-hashes -r requirements.lock
	$(VENV)/bin/python -m compileall -q -j 0 "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --no-deps -e .
	touch $@

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra ray --python 3.11 --no-emit-index-url --generate-hashes -o requirements.lock
