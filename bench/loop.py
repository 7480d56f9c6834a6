"""Benchmark: the outreach loop against its targets, in worlds the prior never saw.

Usage: .venv/bin/python -m bench.loop [--households 30000 100000] [--rounds 6] [--territories NAME ...]
                                      [--prior-households 20000] [--work DIR] [--prior-store URI]

1. The prior: a champion trained in the shipped world (``--prior-households``, seed 11; generate,
   entitlements and features on two quarters, train).
2. For each size and each territory of ``data/nonrecours/data/territories/`` (and the shipped world):
   a population of that size (seed 31, one quarter), then ``nonrecours loop`` for ``--rounds``
   rounds at 1% capacity, from the prior.
3. Each round is judged from the truth of its own quarter (``round-N/round.json``): the campaign
   played, the rules and the prior played alone (their top K, all contacted), the observed-feature
   limit and the true-effect ceiling. The targets of issue 26 are checked per world:
   cumulative >= 1.10x the prior alone and >= 1.5x the rules; no round < 0.9x the prior; the last
   round >= 0.9x the observed-feature limit; in the shipped world, cumulative >= the prior; a round
   at 100,000 households <= 5 minutes.

Writes bench/results/loop_<households>.json and prints a Markdown table per size. Wall time per
round is the time between consecutive ``round.json`` files (the first from the loop's start: it
includes copying the first quarter and its profiles).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.harness import CLI, HERE, machine, measure

TERRITORIES = HERE.parent / "data" / "nonrecours" / "data" / "territories"
PRIOR_SEED, WORLD_SEED, LOOP_SEED = 11, 31, 5
CAPACITY_SHARE = 0.01
TARGETS = {"x prior (cumulative)": 1.10, "x rules (cumulative)": 1.5, "worst round x prior": 0.9, "last x limit": 0.9}
ROUND_MINUTES_AT_100K = 5.0


def train_prior(work: Path, households: int, store: str) -> None:
    shipped = work / "shipped"
    measure([CLI, "generate", "-n", str(households), "--seed", str(PRIOR_SEED), "--out", str(shipped), "--quiet"])
    for folder in (shipped, shipped / "next_quarter"):
        measure([CLI, "entitlements", "--input", str(folder), "--quiet"])
        measure([CLI, "features", "--input", str(folder)])
    measure([CLI, "train", "--input", str(shipped), "--tracking-uri", store, "--quiet"])


def play(work: Path, territory: str, households: int, rounds: int, store: str) -> dict:
    name = f"{territory}-{households}"
    world = work / name
    calibration = [] if territory == "shipped" else ["--calibration", str(TERRITORIES / f"{territory}.yaml")]
    args = ["-n", str(households), "--seed", str(WORLD_SEED), "--quarters", "1", "--out", str(world), "--quiet"]
    measure([CLI, "generate", *args, *calibration])
    measure([CLI, "keys", "--out", str(work / f"{name}.env")])
    out = work / f"{name}-loop"
    k = max(1, round(CAPACITY_SHARE * households))
    loop = [CLI, "loop", "--input", str(world), "--rounds", str(rounds), "--capacity", str(k)]
    loop += ["--seed", str(LOOP_SEED), "--out", str(out), "--tracking-uri", store]
    loop += ["--secrets", str(work / f"{name}.env"), "--decision-log", f"sqlite:///{work / name}.db", "-q"]
    started = time.time()
    timing = measure(loop, output=work / f"{name}-loop.txt")
    lines = [json.loads((out / f"round-{n}" / "round.json").read_text()) for n in range(1, rounds + 1)]
    marks = [started] + [(out / f"round-{n}" / "round.json").stat().st_mtime for n in range(1, rounds + 1)]
    for line, start, end in zip(lines, marks, marks[1:]):
        line["seconds"] = round(end - start, 1)
    return {"territory": territory, "households": households, "capacity": k, "loop": timing, "rounds": lines}


def verdict(world: dict) -> dict:
    rounds = world["rounds"]

    def total(key: str) -> float:
        return sum(r[f"true {key}"] for r in rounds)

    out = {
        "x prior (cumulative)": total("played") / total("prior alone"),
        "x rules (cumulative)": total("played") / total("rules alone"),
        "worst round x prior": min(r["true played"] / r["true prior alone"] for r in rounds),
        "last x limit": rounds[-1]["true played"] / rounds[-1]["true observed-feature limit"],
        "prior x rules (cumulative)": total("prior alone") / total("rules alone"),
        "limit x prior (cumulative)": total("observed-feature limit") / total("prior alone"),
        "slowest round (s)": max(r["seconds"] for r in rounds),
    }
    met = {k: out[k] >= v for k, v in TARGETS.items()}
    if world["territory"] == "shipped":
        met["shipped >= prior"] = out["x prior (cumulative)"] >= 1.0
    if world["households"] >= 100_000:
        met["round <= 5 min"] = out["slowest round (s)"] <= ROUND_MINUTES_AT_100K * 60
    return {**{k: round(v, 3) for k, v in out.items()}, "met": met}


def report(results: list[dict]) -> str:
    head = "| world | round | ranking played | true EUR/month | x rules | x prior | x limit | x ceiling | gate | s |"
    rows = [head, "|" + "---|" * 10]
    for w in results:
        for r in w["rounds"]:
            played = r["true played"]
            ratios = " | ".join(
                f"{played / r[f'true {k}']:.2f}"
                for k in ("rules alone", "prior alone", "observed-feature limit", "ceiling")
            )
            rows.append(
                f"| {w['territory']} | {r['round']} | {r['ranking played']} | {played:,.0f} | {ratios} | "
                f"{r['gate']} | {r['seconds']:.0f} |"
            )
        v = w["verdict"]
        missed = [k for k, ok in v["met"].items() if not ok]
        rows.append(
            f"| **{w['territory']}: all** | | | | {v['x rules (cumulative)']:.2f} | {v['x prior (cumulative)']:.2f} | "
            f"{v['last x limit']:.2f} (last) | | missed: {', '.join(missed) or 'none'} | |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--prior-households", type=int, default=20_000)
    parser.add_argument(
        "--territories", nargs="+", default=[*sorted(p.stem for p in TERRITORIES.glob("*.yaml")), "shipped"]
    )
    parser.add_argument("--work", type=Path, default=None, help="Keep every file here (default: a temporary folder).")
    parser.add_argument(
        "--prior-store", default=None, help="An MLflow store whose @champion is the prior (default: train one here)."
    )
    a = parser.parse_args()
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        store = a.prior_store or f"sqlite:///{work / 'mlflow.db'}"
        if a.prior_store is None:
            train_prior(work, a.prior_households, store)
        for households in a.households:
            results = []
            for territory in a.territories:
                world = play(work, territory, households, a.rounds, store)
                world["verdict"] = verdict(world)
                results.append(world)
                print(report([world]), flush=True)
            summary = {"machine": machine(), "prior_households": a.prior_households, "worlds": results}
            (HERE / "results" / f"loop_{households}.json").write_text(json.dumps(summary, indent=2))
            print(f"\n## {households:,} households\n\n{report(results)}\n", flush=True)


if __name__ == "__main__":
    main()
