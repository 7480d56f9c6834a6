"""Benchmark: the scoring API's throughput and latency next to the same pipeline in process.

Usage: .venv/bin/python -m bench.serve_scale [--seconds 60]
Draws and trains on 3,000 households in a temporary folder (the pipeline command), then measures:
- in process (the limit): `nonrecours.serving.scoring.score_tables` on batches of 1, 16 and 100 households;
- through a real `nonrecours serve`: single-household requests from 1 client and from 16
  concurrent clients, and 100-household requests from 1 client, each for --seconds: first with
  the law engine computing every household (``serving.reuse_law_results_days: 0``, a fresh
  decision log), then on the pipeline's own decision log, where the batch `score` left every
  household's input digest, so that each answer reuses the law engine's (issue 14: agents mostly
  open households the nightly worklist scored); in process, the same reuse (digest, log lookup,
  features, model, reasons) is the limit for those.
Writes bench/results/serve.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import CLI, HERE, machine

UNLIMITED = 10**9


def in_process(folder: Path, tracking: str, sizes: list[int], seconds: float) -> dict:
    import mlflow

    from nonrecours.core.config import LawConfig, ServingConfig
    from nonrecours.core.io import read_table
    from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.serving.scoring import ModelRanker, score_tables
    from nonrecours.training.registry import load_scorer

    mlflow.set_tracking_uri(tracking)
    scorer = ModelRanker(load_scorer("models:/nonrecours@champion"))
    language = ServingConfig().language
    ind, hh = read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS)
    css, law = load_law_parameters().css, LawConfig()
    out = {}
    score_tables(
        ind[ind["household_id"] == hh["household_id"].iloc[0]],
        hh.iloc[:1],
        scorer,
        law=law,
        css=css,
        n_reasons=3,
        language=language,
    )  # warm-up
    for n in sizes:
        times, start, i = [], time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 2 or len(times) < 3:
            part = hh.iloc[(i * n) % (len(hh) - n) :][:n]
            t = time.perf_counter()
            score_tables(
                ind[ind["household_id"].isin(part["household_id"])],
                part,
                scorer,
                law=law,
                css=css,
                n_reasons=3,
                language=language,
            )
            times.append(time.perf_counter() - t)
            i += 1
        out[f"batch_{n}"] = {
            "households_per_second": n * len(times) / sum(times),
            "seconds_per_batch_p50": statistics.median(times),
            "batches": len(times),
        }
    return out


def in_process_reused(folder: Path, tracking: str, sizes: list[int], seconds: float) -> dict:
    """The API's reuse path in process: digests, the log's lookup, then features, model and
    reasons on the stored entitlements (no OpenFisca)."""
    import mlflow

    from nonrecours.core.config import LawConfig, ServingConfig
    from nonrecours.core.io import read_table
    from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS
    from nonrecours.law.engine import law_version
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.serving.decision_log import DecisionLog, connect, input_digests
    from nonrecours.serving.scoring import ModelRanker, score_tables
    from nonrecours.serving.secrets import pseudonym_key, resolve
    from nonrecours.training.registry import load_scorer

    mlflow.set_tracking_uri(tracking)
    scorer = ModelRanker(load_scorer("models:/nonrecours@champion"))
    language = ServingConfig().language
    log = DecisionLog(
        connect(f"sqlite:///{folder / 'decisions.db'}"), pseudonym_key(resolve(folder / "secrets.env", {}))
    )
    ind, hh = read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS)
    css, law = load_law_parameters().css, LawConfig()
    version = law_version(law.reference_month)
    out = {}
    for n in sizes:
        times, start, i, reused = [], time.perf_counter(), 0, 0
        while time.perf_counter() - start < seconds / 2 or len(times) < 3:
            part = hh.iloc[(i * n) % (len(hh) - n) :][:n]
            members = ind[ind["household_id"].isin(part["household_id"])]
            t = time.perf_counter()
            digests = input_digests(members, part, key=log.key, law_version=version)
            known, found = log.reusable_entitlements(
                list(part["household_id"]),
                list(digests.loc[part["household_id"]]),
                since=datetime.now(UTC) - timedelta(days=31),
            )
            ids = dict(enumerate(part["household_id"]))
            known["household_id"] = known["household_id"].map(ids)
            score_tables(members, part, scorer, law=law, css=css, n_reasons=3, known=known, language=language)
            times.append(time.perf_counter() - t)
            reused += len(found)
            i += 1
        out[f"batch_{n}"] = {
            "households_per_second": n * len(times) / sum(times),
            "seconds_per_batch_p50": statistics.median(times),
            "batches": len(times),
            "reused_share": reused / (n * len(times)),
        }
    return out


def load(
    url: str, headers: dict, bodies: list[dict], clients: int, per_request: int, seconds: float, keep_ids: bool
) -> dict:
    from bench.harness import Clients

    run = Clients(url, headers, bodies, clients, per_request=per_request, keep_ids=keep_ids)
    run.run_for(seconds)
    return run.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--households", type=int, default=3000)
    args = parser.parse_args()
    from bench.harness import ApiProcess
    from nonrecours.serving.request import from_tables
    from nonrecours.serving.secrets import api_keys, resolve

    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        folder, tracking = Path(d) / "pop", f"sqlite:///{d}/mlflow.db"
        subprocess.run(
            [CLI, "pipeline", "-n", str(args.households), "--out", str(folder), "--tracking-uri", tracking, "--quiet"],
            check=True,
        )
        limit = in_process(folder, tracking, [1, 16, 100], args.seconds)
        from nonrecours.core.io import read_table
        from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS

        limit_reused = in_process_reused(folder, tracking, [1, 16, 100], args.seconds)
        bodies = from_tables(read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS))
        headers = {"Authorization": f"Bearer {api_keys(resolve(folder / 'secrets.env', {}))[0]}"}
        # one API key for every client: the rate limit (600 a minute by default) is lifted for the measurement
        no_reuse, reuse = Path(d) / "no_reuse.yaml", Path(d) / "reuse.yaml"
        no_reuse.write_text(f"serving:\n  reuse_law_results_days: 0\n  rate_limit_per_minute: {UNLIMITED}\n")
        reuse.write_text(f"serving:\n  rate_limit_per_minute: {UNLIMITED}\n")
        served = {}
        for label, log_url, config in (
            ("computed", f"sqlite:///{d}/decisions.db", no_reuse),
            ("reused", f"sqlite:///{folder / 'decisions.db'}", reuse),
        ):
            with ApiProcess(
                tracking, log_url, folder / "secrets.env", Path(d) / f"server_{label}.log", config=config
            ) as server:
                server.wait()
                served[label] = {
                    "single_1_client": load(server.url, headers, bodies, 1, 1, args.seconds, label == "reused"),
                    "single_16_clients": load(server.url, headers, bodies, 16, 1, args.seconds, label == "reused"),
                    "batch100_1_client": load(server.url, headers, bodies, 1, 100, args.seconds, label == "reused"),
                }
    result = {
        "machine": machine(),
        "seconds_per_scenario": args.seconds,
        "in_process": {"computed": limit, "reused": limit_reused},
        "served": served,
    }
    (HERE / "results" / "serve.json").write_text(json.dumps(result, indent=2))
    print(f"machine: {machine()}")
    print(
        "| law engine | load | households/s (API) | in process, same batch | API / in process | p50 latency | "
        "p99 latency | answers reused | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, lim in (("computed", limit), ("reused", limit_reused)):
        for name, key, batch in (
            ("1 household, 1 client", "single_1_client", 1),
            ("1 household, 16 clients", "single_16_clients", 16),
            ("100 households, 1 client", "batch100_1_client", 100),
        ):
            s, base = served[label][key], lim[f"batch_{batch}"]
            print(
                f"| {label} | {name} | {s['households_per_second']:.1f} | {base['households_per_second']:.1f} "
                f"| {s['households_per_second'] / base['households_per_second']:.0%} "
                f"| {s['latency_p50_s']:.3f} s | {s['latency_p99_s']:.3f} s | {s['reused_share']:.0%} | {s['errors']} |"
            )


if __name__ == "__main__":
    main()
