"""Benchmark: wall time and peak memory of `nonrecours monitor` with N households in each window.

Usage: .venv/bin/python -m bench.monitor_scale 10000 [100000 ...]
For each N: trains a champion on 3,000 households, draws two populations of N households (seeds
1 and 2), then times `monitor --reference A --current B` (both windows scored by the champion,
drift, fairness with bootstrap, reports). Writes bench/results/monitor_<N>.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

from bench.harness import CLI, HERE, machine, measure


def main(sizes: list[int]) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tracking = f"sqlite:///{d}/mlflow.db"
        for step in (
            ["generate", "-n", "3000", "--out", f"{d}/train"],
            ["entitlements", "--input", f"{d}/train"],
            ["features", "--input", f"{d}/train"],
            ["train", "--input", f"{d}/train", "--tracking-uri", tracking],
        ):
            subprocess.run(
                [CLI, *step, "--quiet"] if step[0] != "features" else [CLI, *step],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        for n in sizes:
            for seed in (1, 2):
                subprocess.run(
                    [CLI, "generate", "-n", str(n), "--seed", str(seed), "--out", f"{d}/{n}_{seed}", "--quiet"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            args = [
                CLI,
                "monitor",
                "--reference",
                f"{d}/{n}_1",
                "--current",
                f"{d}/{n}_2",
                "--out",
                f"{d}/reports_{n}",
                "--tracking-uri",
                tracking,
                "--quiet",
            ]
            try:
                result = measure(args)
            except SystemExit:  # exit 1 is a verdict, not a failure of the command
                result = {"note": "monitor exited non-zero"}
            out = {"households_per_window": n, "machine": machine(), "monitor": result}
            (HERE / "results" / f"monitor_{n}.json").write_text(json.dumps(out, indent=2))
            print(
                f"{n:>9,} households per window | monitor {result.get('seconds', float('nan')):.1f} s, peak "
                f"{result.get('max_rss_mb', float('nan')):.0f} MB | {machine()}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000])
