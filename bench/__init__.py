"""The benchmarks: speed and memory measured on this machine, never asserted by a test. Run each
from the checkout as ``.venv/bin/python -m bench.NAME`` (``bench/all.sh`` runs the set the docs
quote); each writes its JSON under ``bench/results/``. :mod:`bench.harness` holds what they share
with the tests."""
