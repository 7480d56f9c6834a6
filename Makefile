# Thin aliases: every target runs scripts/setup.sh (idempotent) and then the CLI or pytest.
OUT ?= demo
HOUSEHOLDS ?= 20000
SEED ?= 2026

.PHONY: setup demo test test-fast lint audit bento
setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/nonrecours pipeline --households $(HOUSEHOLDS) --seed $(SEED) --out $(OUT)

# The whole suite, slow tier included (what .ci/run calls).
test: setup
	.venv/bin/python -m pytest

# The default tier only (a few minutes).
test-fast: setup
	.venv/bin/python -m pytest -m "not slow"

# Lint, format, types and the import layers of pyproject.toml (.ci/run runs it before the tests).
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache

# Known vulnerabilities in the runtime lock (pip-audit; needs PyPI's JSON API or OSV: see the script).
audit: setup
	bash scripts/audit.sh

# The Bento of bentofile.yaml (the project's wheel + the runtime lock); prints its tag.
bento: setup
	bash scripts/build_bento.sh
