#!/usr/bin/env bash
# Creates .venv and installs the locked dependency set, every file checked against the hash in
# the lock (--require-hashes), then the project itself (editable).
#   scripts/setup.sh            development: requirements-dev.lock (runtime + test tools)
#   scripts/setup.sh --runtime  what a service image needs: requirements.lock only
# Idempotent: a second run only checks that everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# uv installs the ~180 pinned packages in seconds where pip takes minutes; the lock is the same either way.
.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
LOCK=requirements-dev.lock
if [ "${1:-}" = "--runtime" ]; then LOCK=requirements.lock; fi
.venv/bin/uv pip install -q -p .venv/bin/python --require-hashes -r "$LOCK"
.venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
