# The two commands of the README: `make run` (the product, on the SQLite default) and `make test`.
# Both create .venv on first use. DATABASE_URL=postgres://... switches either to PostgreSQL.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv clean-local bench figures

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py database_ensure
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrap --host $(HOST) --port $(PORT)
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks against PostgreSQL (throwaway databases): BENCH_MODE=quick (a few minutes) or full.
BENCH_MODE ?= quick
bench: $(STAMP)
	cd bench && ../$(BIN)/python run.py --mode $(BENCH_MODE)

# The analyst's figures of each shipped scenario: 28 days backfilled into a throwaway PostgreSQL
# database and read back (docs/behaviour.md "What an analyst measures"; about 5 minutes each).
figures: $(STAMP)
	for scenario in scenarios/*.yaml; do $(BIN)/python scripts/behaviour_figures.py $$scenario --days 28 || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Removes the SQLite database and the local secret key of this checkout (never PostgreSQL data).
clean-local:
	rm -rf .local staticfiles
