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
  $PY -m bench.profile_law --households 10000
  $PY -m bench.law_side_by_side --households 20000
  $PY -m bench.generate_scale 100000
  $PY -m bench.score_scale 100000 --worklist-only
  $PY -m bench.serve_scale --seconds 40
  $PY -m bench.monitor_scale 10000
  $PY -m bench.caseload_scale
  echo "# finished $(date -u +%FT%TZ)"
} 2>&1 | grep --line-buffered -v 'Downloading artifacts' | tee bench/results/all.log
