#!/usr/bin/env bash
# Re-measure the README's "Benchmarks" section in one run, on an otherwise idle machine
# (about 50 minutes on 2 cores). Each script writes its JSON under bench/results/; the whole
# output, with the Markdown tables the README quotes, goes to bench/results/all.log.
# Usage: bench/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p bench/results
{
  echo "# bench/all.sh, started $(date -u +%FT%TZ) at commit $(git rev-parse --short HEAD)"
  $PY bench/profile_law.py --households 10000
  $PY bench/law_side_by_side.py --households 20000
  $PY bench/generate_scale.py 100000
  $PY bench/score_scale.py 100000 --worklist-only
  $PY bench/serve_scale.py --seconds 40
  $PY bench/monitor_scale.py 10000
  $PY bench/caseload_scale.py
  echo "# finished $(date -u +%FT%TZ)"
} 2>&1 | grep --line-buffered -v 'Downloading artifacts' | tee bench/results/all.log
