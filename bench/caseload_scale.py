"""Benchmark: the agents' caseload page with 10,000 households in the campaign, on a real server.

Usage: .venv/bin/python -m bench.caseload_scale [--households 30000] [--contacts 10000] [--requests 300]
Draws a population in a temporary folder (`nonrecours generate`, one quarter), makes a campaign of
--contacts contacts ranked by the rules (`nonrecours campaign --ranking rules`: no model needed),
gives it to a team (`nonrecours agents assign`: the legal basis of every household, by
OpenFisca-France), adds an agent, starts `nonrecours serve` (its web page; no champion is needed
for the page) and, signed in as that agent with one client, asks for --requests caseload pages:
random pages unfiltered, by benefit, by département, by status, and a household's page. Times are
the client's, request to last byte. Writes bench/results/caseload.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import CLI, HERE, machine

PASSWORD = "bench password, long enough"
PERCENTILE_95 = 0.95


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(client, url: str, **params) -> tuple[float, str]:
    start = time.perf_counter()
    r = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    r.raise_for_status()
    return elapsed, r.text


def main() -> None:
    import httpx

    from bench.harness import ApiProcess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=30_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        folder, log_url, tracking = Path(d) / "pop", f"sqlite:///{d}/decisions.db", f"sqlite:///{d}/mlflow.db"
        steps = {}
        for name, command in (
            (
                "generate",
                [CLI, "generate", "-n", str(args.households), "--out", str(folder), "--quarters", "1", "--quiet"],
            ),
            ("keys", [CLI, "keys", "--out", str(folder / "secrets.env")]),
            (
                "campaign",
                [
                    CLI,
                    "campaign",
                    "--input",
                    str(folder),
                    "--capacity",
                    str(args.contacts),
                    "--ranking",
                    "rules",
                    "--out",
                    str(folder / "campaign.csv"),
                    "--decision-log",
                    log_url,
                    "--secrets",
                    str(folder / "secrets.env"),
                    "--tracking-uri",
                    tracking,
                    "--quiet",
                ],
            ),
            (
                "assign",
                [
                    CLI,
                    "agents",
                    "assign",
                    str(folder / "campaign.csv"),
                    "--team",
                    "bench",
                    "--input",
                    str(folder),
                    "--decision-log",
                    log_url,
                    "--quiet",
                ],
            ),
        ):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            steps[name] = round(time.perf_counter() - start, 1)
            print(f"{name}: {steps[name]} s", flush=True)
        (Path(d) / "password").write_text(PASSWORD + "\n")
        subprocess.run(
            [
                CLI,
                "agents",
                "add",
                "bench",
                "--team",
                "bench",
                "--password-file",
                str(Path(d) / "password"),
                "--decision-log",
                log_url,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with ApiProcess(tracking, log_url, folder / "secrets.env", Path(d) / "server.log") as server:
            server.wait("/agents/connexion", 200)
            client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=True)
            form = client.get("/agents/connexion").text
            token = re.search(r'name="token" value="([^"]+)"', form).group(1)
            client.post(
                "/agents/connexion", data={"token": token, "name": "bench", "password": PASSWORD}
            ).raise_for_status()
            _, first = timed(client, "/agents/liste")
            total = int(re.search(r"(\d+) foyer\(s\)", first).group(1))
            pages = -(-total // 50)
            decisions = re.findall(r'href="/agents/foyer/(\d+)"', first)
            rng = random.Random(0)
            kinds = {
                "page (random, no filter)": lambda: timed(client, "/agents/liste", page=rng.randint(1, pages)),
                "benefit filter (rsa)": lambda: timed(client, "/agents/liste", benefit="rsa", page=rng.randint(1, 20)),
                "status filter (todo)": lambda: timed(client, "/agents/liste", status="todo", page=rng.randint(1, 20)),
                "household page": lambda: timed(client, f"/agents/foyer/{rng.choice(decisions)}"),
            }
            results = {}
            for kind, call in kinds.items():
                times = [call()[0] for _ in range(args.requests // len(kinds))]
                results[kind] = {
                    "requests": len(times),
                    "p50_ms": round(1000 * statistics.median(times), 1),
                    "p95_ms": round(1000 * percentile(times, PERCENTILE_95), 1),
                    "max_ms": round(1000 * max(times), 1),
                }
                print(kind, results[kind], flush=True)
    report = {
        "machine": machine(),
        "households": args.households,
        "campaign_households": total,
        "pages": pages,
        "steps_seconds": steps,
        "results": results,
    }
    (HERE / "results" / "caseload.json").write_text(json.dumps(report, indent=2))
    print(f"\n{total:,} households in the campaign ({pages} pages of 50), one signed-in client, {machine()}\n")
    print("| request | p50 | p95 | max |\n|---|---:|---:|---:|")
    for kind, r in results.items():
        print(f"| {kind} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['max_ms']:.0f} ms |")


if __name__ == "__main__":
    main()
