"""Benchmark: do two OpenFisca simulations at once run as fast as one? (The law engine's scaling
over this machine's cores.)

Usage: .venv/bin/python -m bench.law_parallel [--households 10000]
Draws 2 x --households (`nonrecours generate`, in a temporary folder), then times one simulation of
the first --households alone, and then two simulations (the first and the second half) in two
separate processes started together (spawned, not forked: nothing shared but the machine). Each
process loads OpenFisca-France and runs a one-household simulation first (its lazy set-up), then
waits for the other, so that only the timed computations overlap. As a control, a pure-Python
loop (no numpy) is timed the same way, alone and two at once: if it scales and OpenFisca does
not, the cores are real and OpenFisca contends for what they share. Prints the seconds of each.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from bench.harness import machine
from bench.profile_law import population, situation


def timed(folder: str, offset: int, n: int, month: str, barrier) -> float:
    import pandas as pd

    from nonrecours.law.openfisca import compute_entitlements

    persons, households, css = situation(
        pd.read_parquet(Path(folder) / "individuals.parquet"), pd.read_parquet(Path(folder) / "households.parquet")
    )
    ids = households["household_id"].iloc[offset : offset + n]
    first = households["household_id"].iloc[:1]
    compute_entitlements(
        persons[persons["household_id"].isin(first)],
        households[households["household_id"].isin(first)],
        reference_month=month,
        css=css,
    )
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    compute_entitlements(
        persons[persons["household_id"].isin(ids)],
        households[households["household_id"].isin(ids)],
        reference_month=month,
        css=css,
    )
    return time.perf_counter() - start


SPIN = 30_000_000


def spin(barrier) -> float:
    """Seconds for a pure-Python loop of SPIN additions (the control)."""
    if barrier is not None:
        barrier.wait()
    start, total = time.perf_counter(), 0
    for i in range(SPIN):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=10_000)
    args = parser.parse_args()
    from nonrecours.core.config import Settings

    month = Settings().law.reference_month
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        population(2 * args.households, Path(tmp), month)
        with context.Pool(1) as pool:
            alone = pool.apply(timed, (tmp, 0, args.households, month, None))
        barrier = context.Manager().Barrier(2)
        with context.Pool(2) as pool:
            both = pool.starmap(
                timed,
                [(tmp, 0, args.households, month, barrier), (tmp, args.households, args.households, month, barrier)],
            )
        with context.Pool(1) as pool:
            spin_alone = pool.apply(spin, (None,))
        with context.Pool(2) as pool:
            spin_both = pool.map(spin, [barrier, barrier])
    n = args.households
    print(f"machine: {machine()}")
    print(f"one simulation of {n:,} households alone: {alone:.1f} s ({n / alone:,.0f}/s)")
    print(
        f"two at once: {both[0]:.1f} s and {both[1]:.1f} s ({2 * n / max(both):,.0f}/s together, "
        f"{alone / max(both):.2f}x the speed of one alone each)"
    )
    print(
        f"control, a pure-Python loop: alone {spin_alone:.2f} s, two at once {spin_both[0]:.2f} s and "
        f"{spin_both[1]:.2f} s"
    )


if __name__ == "__main__":
    main()
