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

# The import layers of pyproject.toml, on the installed layout (the tests run it too).
lint: setup
	.venv/bin/python scripts/lint_imports.py

# Known vulnerabilities in the runtime lock (pip-audit; needs PyPI's JSON API or OSV: see the script).
audit: setup
	bash scripts/audit.sh

# The Bento of bentofile.yaml (the project's wheel + the runtime lock); prints its tag.
bento: setup
	bash scripts/build_bento.sh
