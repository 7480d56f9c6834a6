#!/usr/bin/env bash
# Builds the Bento of bentofile.yaml: the project's wheel into dist/, then `bentoml build`.
# Prints the Bento's tag (name:version) on its last line. BENTOML_HOME chooses the Bento store
# (default ~/bentoml). Serve it with the service's environment (README "Serving"):
#   NONRECOURS_SECRETS_FILE=secrets.env MLFLOW_TRACKING_URI=sqlite:///mlflow.db \
#   NONRECOURS_DECISION_LOG_URL=sqlite:///decisions.db .venv/bin/bentoml serve nonrecours-scoring:latest
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f dist/nonrecours-*.whl
.venv/bin/uv build -q --wheel -o dist .
BENTOML_DO_NOT_TRACK=True .venv/bin/bentoml build -f bentofile.yaml --output tag | sed -n 's/^__tag__://p'
