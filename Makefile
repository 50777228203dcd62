# Kefu Console — the two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-sqlite test-postgres system-deps venv lint format bench worker clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Everything the demo needs is embedded: SQLite, the in-process channel layer,
# the sandbox WeChat. It prints the URL and the logins.
demo: $(STAMP)
	$(PY) scripts/demo.py --host $(HOST) --port $(PORT)

# System packages for the suite: PostgreSQL and Redis servers, Chromium for the
# browser tests, CJK fonts for screenshots. Installed only when missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing fonts-noto-cjk fonts-noto-color-emoji >/dev/null; \
	  else echo "please install:$$missing (apt-get)"; exit 1; fi; \
	fi

TEST_ENV := DEBUG=0 SECRET_KEY=test-secret-key-not-for-production WECHAT_SANDBOX=true \
	ALLOWED_HOSTS=localhost,127.0.0.1,testserver DJANGO_SETTINGS_MODULE=config.settings

test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(STAMP)
	@echo "=== suite on SQLite + in-memory channel layer ==="
	env -u DATABASE_URL -u REDIS_URL $(TEST_ENV) $(PY) -m pytest -m "not browser" $(PYTEST_ARGS)
	@echo "=== real-browser tests on SQLite ==="
	env -u DATABASE_URL -u REDIS_URL $(TEST_ENV) $(PY) -m pytest -m browser $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "=== suite on PostgreSQL + Redis ==="
	@trap 'scripts/services.sh stop $$KEFU_SERVICES_STARTED' EXIT; \
	out=$$(scripts/services.sh start) || { echo "could not start PostgreSQL / Redis (see var/services/*.log)"; exit 1; }; \
	eval "$$out"; \
	env $(TEST_ENV) DATABASE_URL=$$DATABASE_URL REDIS_URL=$$REDIS_URL $(PY) -m pytest -m "not browser" $(PYTEST_ARGS) && \
	echo "=== real-browser tests on PostgreSQL + Redis ===" && \
	env $(TEST_ENV) DATABASE_URL=$$DATABASE_URL REDIS_URL=$$REDIS_URL $(PY) -m pytest -m browser $(PYTEST_ARGS)

worker: $(STAMP)
	$(PY) manage.py sendworker

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

# Benchmarks and the long reliability runs (~20 min); writes docs/benchmarks.md.
# Peers go into var/bench-venv (bench/requirements.txt), never into .venv.
# BENCH_ARGS="--quick" for short runs, "--soak-minutes 30" for the full soak.
bench: system-deps $(STAMP)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: wrk"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "please install: wrk (apt-get)"; exit 1; fi; }
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
