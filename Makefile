# The two set-up commands of the README: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test test-fast lint bench
setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) -m segue demo

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	@bash scripts/system-deps.sh
	$(PY) -m pytest -q

# The edit loop: no lint, and none of the compile, oracle (transformers conformance) or e2e (daemon over
# sockets) tests; `make test` runs everything.
test-fast: setup
	$(PY) -m pytest -q -m "not compile and not oracle and not e2e"

bench: setup
	$(PY) -m bench
