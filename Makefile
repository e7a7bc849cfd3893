# The two commands: `make demo` and `make test`. Both set up .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := data/demo.duckdb
MODELS := semantic-models

.PHONY: demo test bench setup setup-dev system-deps lint clean

$(BIN)/semproxy: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/semproxy
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/semproxy
setup-dev: $(VENV)/.dev

$(DEMO_DB): | $(BIN)/semproxy
	$(BIN)/semproxy demo-data --database $(DEMO_DB)

# psql, pgjdbc and psqlODBC (with unixODBC) for the client tests (Debian's packages); installed only when missing.
system-deps:
	@command -v psql >/dev/null && test -f /usr/share/java/postgresql.jar && test -f /usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so && test -f /usr/include/sql.h || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client libpostgresql-jdbc-java odbc-postgresql unixodbc unixodbc-dev >/dev/null)

demo: $(BIN)/semproxy $(DEMO_DB)
	$(BIN)/semproxy serve --models $(MODELS) --database $(DEMO_DB)

lint: $(VENV)/.dev
	$(BIN)/ruff check semproxy tests bench
	$(BIN)/mypy

test: $(VENV)/.dev system-deps lint $(DEMO_DB)
	$(BIN)/pytest -q

bench: $(VENV)/.dev $(DEMO_DB)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .state
