"""Benchmark: the scoring API's throughput and latency next to the same pipeline in process.

Usage: .venv/bin/python bench/serve_scale.py [--seconds 60]
Draws and trains on 3,000 households in a temporary folder (the pipeline command), then measures:
- in process (the limit): `nonrecours.serving.scoring.score_tables` on batches of 1, 16 and 100 households;
- through a real `nonrecours serve`: single-household requests from 1 client and from 16
  concurrent clients, and 100-household requests from 1 client, each for --seconds.
Writes bench/results/serve.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.api_process: the server launcher and load generator, a test helper not shipped
from generate_scale import CLI, HERE, machine  # noqa: E402


def in_process(folder: Path, tracking: str, sizes: list[int], seconds: float) -> dict:
    import mlflow

    from nonrecours.core.config import LawConfig
    from nonrecours.core.io import read_table
    from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.serving.scoring import score_tables
    from nonrecours.training.registry import load_scorer

    mlflow.set_tracking_uri(tracking)
    scorer = load_scorer("models:/nonrecours@champion")
    ind, hh = read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS)
    css, law = load_law_parameters().css, LawConfig()
    out = {}
    score_tables(ind[ind["household_id"] == hh["household_id"].iloc[0]], hh.iloc[:1], scorer, law=law, css=css, n_reasons=3)  # warm-up
    for n in sizes:
        times, start, i = [], time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 2 or len(times) < 3:
            part = hh.iloc[(i * n) % (len(hh) - n) :][:n]
            t = time.perf_counter()
            score_tables(ind[ind["household_id"].isin(part["household_id"])], part, scorer, law=law, css=css, n_reasons=3)
            times.append(time.perf_counter() - t)
            i += 1
        out[f"batch_{n}"] = {"households_per_second": n * len(times) / sum(times), "seconds_per_batch_p50": statistics.median(times), "batches": len(times)}
    return out


def load(url: str, headers: dict, bodies: list[dict], clients: int, per_request: int, seconds: float) -> dict:
    from tests.api_process import Clients

    run = Clients(url, headers, bodies, clients, per_request=per_request)
    run.run_for(seconds)
    return run.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--households", type=int, default=3000)
    args = parser.parse_args()
    from nonrecours.serving.request import from_tables
    from nonrecours.serving.secrets import api_keys, resolve
    from tests.api_process import ApiProcess

    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        folder, tracking = Path(d) / "pop", f"sqlite:///{d}/mlflow.db"
        subprocess.run([CLI, "pipeline", "-n", str(args.households), "--out", str(folder), "--tracking-uri", tracking, "--quiet"], check=True)
        limit = in_process(folder, tracking, [1, 16, 100], args.seconds)
        from nonrecours.core.io import read_table
        from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS

        bodies = from_tables(read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS))
        with ApiProcess(tracking, f"sqlite:///{d}/decisions.db", folder / "secrets.env", Path(d) / "server.log") as server:
            server.wait()
            headers = {"Authorization": f"Bearer {api_keys(resolve(folder / 'secrets.env', {}))[0]}"}
            served = {
                "single_1_client": load(server.url, headers, bodies, 1, 1, args.seconds),
                "single_16_clients": load(server.url, headers, bodies, 16, 1, args.seconds),
                "batch100_1_client": load(server.url, headers, bodies, 1, 100, args.seconds),
            }
    result = {"machine": machine(), "seconds_per_scenario": args.seconds, "in_process": limit, "served": served}
    (HERE / "results" / "serve.json").write_text(json.dumps(result, indent=2))
    rows = [
        ("1 household, 1 client", served["single_1_client"], limit["batch_1"]),
        ("1 household, 16 clients", served["single_16_clients"], limit["batch_16"]),
        ("100 households, 1 client", served["batch100_1_client"], limit["batch_100"]),
    ]
    print(f"machine: {machine()}")
    print("| load | households/s (API) | in process, same batch | API / in process | p50 latency | p99 latency | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, s, lim in rows:
        print(
            f"| {name} | {s['households_per_second']:.1f} | {lim['households_per_second']:.1f} | {s['households_per_second'] / lim['households_per_second']:.0%} "
            f"| {s['latency_p50_s']:.2f} s | {s['latency_p99_s']:.2f} s | {s['errors']} |"
        )


if __name__ == "__main__":
    main()
