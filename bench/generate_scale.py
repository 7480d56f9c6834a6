"""Benchmark: wall time and peak memory of `nonrecours generate` and `nonrecours entitlements`,
and what the agency's missing data cost the law engine.

Usage: .venv/bin/python -m bench.generate_scale 100000 [1000000 ...]
Writes bench/results/generate_<N>.json and prints one line per size. `generate` writes two
quarters (five law-engine runs: the declared history quarter, then per quarter the truth and the
agency's file). `entitlements` runs on the current quarter's extract as written (NA where the
agency holds nothing, filled and marked by the law engine's mapping) and on a complete copy
(every NA replaced by the value the mapping would estimate): the difference is the cost of the
missing data. Peak memory is the largest
resident set size reached by any single process of the command (the command itself or one of its
worker processes: getrusage of waited-for children reports the largest, not the sum).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.harness import CLI, HERE, machine, measure


def main(sizes: list[int]) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            gen = measure([CLI, "generate", "-n", str(n), "--out", d, "--quiet"])
            size_mb = sum(p.stat().st_size for p in Path(d).rglob("*.parquet")) / 2**20
            ent = measure([CLI, "entitlements", "--input", d, "--quiet"])
            complete = Path(d) / "complete"
            missing = fill_missing(Path(d), complete)
            full = measure([CLI, "entitlements", "--input", str(complete), "--quiet"])
        result = {
            "households": n,
            "machine": machine(),
            "generate": gen,
            "entitlements": ent,
            "entitlements_complete_data": full,
            "missing_shares": missing,
            "output_mb": round(size_mb, 1),
        }
        (HERE / "results" / f"generate_{n}.json").write_text(json.dumps(result, indent=2))
        print(
            f"{n:>9,} households | generate {gen['seconds']:>7.1f} s, peak {gen['max_rss_mb']:>6.0f} MB"
            f" | entitlements {ent['seconds']:>7.1f} s ({n / ent['seconds']:,.0f}/s), peak {ent['max_rss_mb']:>6.0f} MB"
            f" | on complete data {full['seconds']:.1f} s ({n / full['seconds']:,.0f}/s) | files {size_mb:.0f} "
            f"MB | missing {missing} | {machine()}"
        )


def fill_missing(folder: Path, out: Path) -> dict[str, float]:
    """A copy of the extract in ``folder`` with every NA replaced by what the law engine's mapping
    would estimate (so OpenFisca sees the same inputs); returns the shares that were missing."""
    import pandas as pd

    from nonrecours.law.parameters import load_law_parameters

    out.mkdir()
    ind = pd.read_parquet(folder / "individuals.parquet")
    hh = pd.read_parquet(folder / "households.parquet")
    shares = {
        c: round(float(ind[c].isna().mean()), 3)
        for c in ("known_pay_monthly", "known_turnover_monthly", "disability_rate")
    }
    shares["rent_monthly"] = round(float(hh["rent_monthly"].isna().mean()), 3)
    ind["known_pay_monthly"] = ind["known_pay_monthly"].fillna(ind["declared_pay_last_year"] / 12)
    self_employed = ind["activity"].astype(str) == "self_employed"
    ind["known_turnover_monthly"] = ind["known_turnover_monthly"].fillna(
        ind["known_turnover_monthly"]
        .where(~self_employed, load_law_parameters().self_employed_turnover_monthly)
        .fillna(0.0)
    )
    ind["declared_pay_n2"] = ind["declared_pay_n2"].fillna(ind["declared_pay_last_year"])
    ind["disability_rate"] = ind["disability_rate"].fillna(0.0)
    size = ind.groupby("household_id").size().reindex(hh["household_id"]).to_numpy()
    guess = load_law_parameters().rent_estimate.rent(
        hh["tenure"].astype("object"), hh["territory_type"], pd.Series(size, index=hh.index)
    )
    hh["rent_monthly"] = hh["rent_monthly"].fillna(guess)
    ind.to_parquet(out / "individuals.parquet")
    hh.to_parquet(out / "households.parquet")
    return shares


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
