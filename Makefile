# `make run` serves the app on the embedded SQLite default with a demo campaign;
# `make test` runs the whole test suite. Both set themselves up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app petition

.PHONY: run test chromium lint clean-instance messages

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(FLASK) init-db
	$(FLASK) demo --if-empty
	@echo "Serving on http://127.0.0.1:5000 (confirmation emails are printed below)"
	$(BIN)/python run.py

# Browser tests drive Debian's chromium; the poster test prints PDFs with poppler's
# pdftoppm; tests/test_nginx.py runs deploy/nginx/ in Debian's nginx and
# tests/test_redis_limits.py its own redis-server; tests/test_systemd_units.py checks
# deploy/systemd/ with systemd-analyze. Install them when missing (needs root, as in CI; the
# tests start their own nginx and Redis, not the packages' services).
chromium:
	@test -x /usr/bin/chromium && command -v pdftoppm >/dev/null && test -x /usr/sbin/nginx && command -v redis-server >/dev/null && command -v systemd-analyze >/dev/null || { \
	  echo "Installing Debian's chromium, poppler-utils, nginx-light, redis-server and systemd for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils nginx-light redis-server systemd >/dev/null; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean-instance:
	rm -rf instance

# Extract translatable strings (templates and Python) into translations/messages.pot.
messages: $(STAMP)
	mkdir -p translations
	$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot .

# Benchmarks (bench/, docs/performance.md). wrk comes from Debian: installed when missing
# (needs root, as in CI); aiohttp and py-spy from requirements-bench.txt.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench
export BENCH_DATABASE_URL

.PHONY: bench bench-quick bench-smoke bench-deps

$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { \
	  echo "Installing Debian's wrk for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@command -v valgrind >/dev/null || { \
	  echo "Installing Debian's valgrind for bench/instructions.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }

# Every workload on PostgreSQL ($(BENCH_DATABASE_URL), dropped and re-created) and SQLite;
# prints a table, saves bench/results/*.json and rewrites docs/performance.md.
bench: bench-deps
	$(BIN)/python bench/run.py --db postgresql --db sqlite --profile --docs

bench-quick: bench-deps
	$(BIN)/python bench/run.py --db postgresql --db sqlite --quick

bench-smoke: bench-deps
	$(BIN)/python bench/run.py --db sqlite --smoke

# The bench smoke test (tests/test_bench.py) needs aiohttp and, when it can have it, wrk.
test: bench-deps
