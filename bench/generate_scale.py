"""Benchmark: wall time and peak memory of `nonrecours generate` and `nonrecours entitlements`.

Usage: .venv/bin/python bench/generate_scale.py 100000 [1000000 ...]
Writes bench/results/generate_<N>.json and prints one line per size. Peak memory is the largest
resident set size reached by any single process of the command (the command itself or one of its
worker processes: getrusage of waited-for children reports the largest, not the sum).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "nonrecours")


def measure(args: list[str]) -> dict:
    """Run one CLI command in a fresh process; its children's peak RSS is ours to read after."""
    start = time.perf_counter()
    code = (
        "import resource, subprocess, sys, json\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': rc, 'max_rss_mb': ru.ru_maxrss / 1024}))\n"
    )
    # stdout carries the measurement; the command's own errors go straight to our stderr.
    out = subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["seconds"] = round(time.perf_counter() - start, 1)
    if res["rc"] != 0:
        raise SystemExit(f"{args} failed with exit code {res['rc']}")
    return res


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Python {platform.python_version()}"


def main(sizes: list[int]) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            gen = measure([CLI, "generate", "-n", str(n), "--out", d, "--quiet"])
            ent = measure([CLI, "entitlements", "--input", d, "--quiet"])
            size_mb = sum(p.stat().st_size for p in Path(d).iterdir()) / 2**20
        result = {"households": n, "machine": machine(), "generate": gen, "entitlements": ent, "output_mb": round(size_mb, 1)}
        (HERE / "results" / f"generate_{n}.json").write_text(json.dumps(result, indent=2))
        print(
            f"{n:>9,} households | generate {gen['seconds']:>7.1f} s, peak {gen['max_rss_mb']:>6.0f} MB"
            f" | entitlements {ent['seconds']:>7.1f} s, peak {ent['max_rss_mb']:>6.0f} MB | files {size_mb:.0f} MB | {machine()}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
