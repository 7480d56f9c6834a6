"""Benchmark: wall time and peak memory of `nonrecours score` (batch worklist) for N households.

Usage: .venv/bin/python -m bench.score_scale 10000 [100000 ...] [--worklist-only]
Trains a champion on 3,000 households, draws N households (seed 1), then times
`score --input ... --out worklist.csv` with the decision log written (SQLite, every household
logged) and again with `--no-log`, so the log's share is visible; then with `--capacity` 1% of
the households (a team's worklist: reasons, TreeSHAP, only for those rows) and `entitlements` on
the same extract, the law engine alone, for the ratio. Writes bench/results/score_<N>.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

from bench.harness import CLI, HERE, machine, measure


def main(sizes: list[int], worklist_only: bool = False) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tracking = f"sqlite:///{d}/mlflow.db"
        subprocess.run(
            [CLI, "pipeline", "-n", "3000", "--out", f"{d}/train", "--tracking-uri", tracking, "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run([CLI, "keys", "--out", f"{d}/secrets.env"], check=True, stdout=subprocess.DEVNULL)
        for n in sizes:
            folder = f"{d}/{n}"
            subprocess.run(
                [CLI, "generate", "-n", str(n), "--seed", "1", "--out", folder, "--quiet"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            common = ["--input", folder, "--tracking-uri", tracking, "--secrets", f"{d}/secrets.env", "--quiet"]
            skipped = {
                "seconds": float("nan"),
                "max_rss_mb": float("nan"),
            }  # --worklist-only: the 1% list and the law engine alone
            logged = (
                skipped
                if worklist_only
                else measure(
                    [
                        CLI,
                        "score",
                        *common,
                        "--out",
                        f"{folder}/worklist.csv",
                        "--decision-log",
                        f"sqlite:///{folder}/decisions.db",
                    ]
                )
            )
            dry = (
                skipped if worklist_only else measure([CLI, "score", *common, "--out", f"{folder}/dry.csv", "--no-log"])
            )
            capped = measure(
                [
                    CLI,
                    "score",
                    *common,
                    "--out",
                    f"{folder}/top.csv",
                    "--capacity",
                    str(max(1, n // 100)),
                    "--decision-log",
                    f"sqlite:///{folder}/capped.db",
                ]
            )
            law = measure([CLI, "entitlements", "--input", folder, "--out", f"{folder}/law", "--quiet"])
            out = {
                "households": n,
                "machine": machine(),
                "score_logged": logged,
                "score_no_log": dry,
                "score_capacity_1pct": capped,
                "entitlements": law,
            }
            (HERE / "results" / f"score_{n}.json").write_text(json.dumps(out, indent=2))
            print(
                f"{n:>9,} households | score {logged['seconds']:.1f} s, peak {logged['max_rss_mb']:.0f} MB | "
                f"--no-log {dry['seconds']:.1f} s | "
                f"--capacity 1% {capped['seconds']:.1f} s | entitlements {law['seconds']:.1f} s "
                f"({capped['seconds'] / law['seconds']:.2f}x) | {machine()}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:] if a.isdigit()] or [10_000], worklist_only="--worklist-only" in sys.argv)
