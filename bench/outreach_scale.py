"""Benchmark: wall time and peak memory of `nonrecours campaign`, `outreach` and
`train --labels observed`, and the four policies' additional euros at 1% capacity on the next
quarter (a population no test trained on).

Usage: .venv/bin/python -m bench.outreach_scale 100000 [...]   (households)
For each size: run the pipeline's first stages in a temporary folder (generate two quarters,
entitlements and features on both, train the oracle champion), then time one campaign at 1% of
households ranked by the champion, the field, and training on observed labels. Writes
bench/results/outreach_<households>.json and prints the policy table.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from bench.harness import CLI, HERE, machine, measure

CAPACITY_SHARE = 0.01


def main(sizes: list[int]) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    for households in sizes:
        with tempfile.TemporaryDirectory() as d:
            store, log = f"sqlite:///{d}/mlflow.db", f"sqlite:///{d}/decisions.db"
            common = ["--secrets", f"{d}/secrets.env", "--decision-log", log]
            measure([CLI, "generate", "-n", str(households), "--out", d, "--quiet"])
            for folder in (d, f"{d}/next_quarter"):
                measure([CLI, "entitlements", "--input", folder, "--quiet"])
                measure([CLI, "features", "--input", folder])
            measure([CLI, "train", "--input", d, "--tracking-uri", store, "--quiet"])
            measure([CLI, "keys", "--out", f"{d}/secrets.env"])
            k = max(1, round(CAPACITY_SHARE * households))
            campaign = measure(
                [
                    CLI,
                    "campaign",
                    "--input",
                    d,
                    "--capacity",
                    str(k),
                    "--seed",
                    "1",
                    "--out",
                    f"{d}/campaign.csv",
                    "--tracking-uri",
                    store,
                    "--quiet",
                    *common,
                ]
            )
            outreach = measure([CLI, "outreach", "--input", d, "--campaign", f"{d}/campaign.csv", *common])
            campaign_id = Path(f"{d}/campaign.csv").read_text().splitlines()[1].split(",")[0]
            observed = measure(
                [
                    CLI,
                    "train",
                    "--labels",
                    "observed",
                    "--campaign",
                    campaign_id,
                    "--input",
                    d,
                    "--tracking-uri",
                    store,
                    *common,
                ],
                output=Path(d) / "observed.txt",
            )
            table = (Path(d) / "observed.txt").read_text()
        result = {
            "households": households,
            "capacity": k,
            "machine": machine(),
            "campaign": campaign,
            "outreach": outreach,
            "train_observed": observed,
            "printed": re.sub(r"\x1b\[[0-9;]*m", "", table),
        }
        (HERE / "results" / f"outreach_{households}.json").write_text(json.dumps(result, indent=2))
        print(
            f"{households:>9,} households, {k:,} contacts | campaign {campaign['seconds']:.1f} s, peak "
            f"{campaign['max_rss_mb']:.0f} MB"
            f" | outreach {outreach['seconds']:.1f} s, peak {outreach['max_rss_mb']:.0f} MB"
            f" | train --labels observed {observed['seconds']:.1f} s, peak {observed['max_rss_mb']:.0f} MB | "
            f"{machine()}"
        )
        print(result["printed"])


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
