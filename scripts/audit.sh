#!/usr/bin/env bash
# Checks the runtime lock (what the service and a Bento install) against the Python packaging
# advisory database, through pip-audit (run by uv, never installed into the project). It needs
# to reach PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json, which carries each
# release's known vulnerabilities) or OSV (https://api.osv.dev: VULNERABILITY_SERVICE=osv).
# --strict: a package that could not be checked fails the run, so "nothing found" always means
# "checked and clean". Exit 0 clean, 1 a vulnerability or an unchecked package.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/uv tool run pip-audit==2.10.1 -r requirements.lock --require-hashes --disable-pip --strict \
    --vulnerability-service "${VULNERABILITY_SERVICE:-pypi}" --progress-spinner off "$@"
