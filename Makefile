# The two set-up commands of the README: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test lint bench
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

bench: setup
	$(PY) -m bench
