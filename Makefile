# The two commands: `make run` (the whole system + demo) and `make test` (the whole suite).
.PHONY: run test test-fast setup setup-tests lint typecheck bench-list

setup:
	@bash scripts/setup.sh

# What the whole suite needs beyond `setup`: Debian's Chromium for the console's browser tests.
setup-tests:
	@bash scripts/setup.sh --tests

# Flags pass through: make run ARGS="--quiet --no-demo" (see python -m localdev.run --help).
ARGS ?=
run: setup
	.venv/bin/python -m localdev.run $(ARGS)

test: setup-tests
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/python -m pytest -p no:cacheprovider
	@bash scripts/check_no_stray_emulators.sh

# Unit and fake-backed service tests only: no emulators, no long simulations, one worker per core
# (pytest-xdist; the whole suite stays serial: its emulators are shared per session). Under a minute.
test-fast: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/python -m pytest -p no:cacheprovider -n auto -m "not emulator and not slow" tests/unit

lint: setup
	.venv/bin/ruff check .

# mypy over core, models, adapters and services (configured in pyproject.toml).
typecheck: setup
	.venv/bin/mypy

bench-list: setup
	.venv/bin/python -m bench
