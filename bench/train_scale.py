"""Benchmark: wall time and peak memory of `nonrecours features` and `nonrecours train`, and the
quality table (model against the rules baseline, logistic regression and ceiling).

Usage: .venv/bin/python -m bench.train_scale 100000 [1000000 ...]   (profile rows; 8 per household)
For each size: generate N/8 households (two quarters) in a temporary folder, compute the next
quarter's entitlements and features, then time `entitlements`, `features` and `train` (tested on
the held-out households and on the same ones next quarter) into a temporary SQLite MLflow store.
Writes bench/results/train_<rows>.json and bench/results/quality_<rows>.md (three tables:
candidates, rows the law engine finds eligible, next quarter).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.harness import CLI, HERE, machine, measure


def main(sizes: list[int]) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    for rows in sizes:
        households = rows // 8
        with tempfile.TemporaryDirectory() as d:
            measure([CLI, "generate", "-n", str(households), "--out", d, "--quiet"])
            measure([CLI, "entitlements", "--input", f"{d}/next_quarter", "--quiet"])
            measure([CLI, "features", "--input", f"{d}/next_quarter"])
            measure([CLI, "entitlements", "--input", d, "--quiet"])
            feat = measure([CLI, "features", "--input", d])
            train = measure([CLI, "train", "--input", d, "--tracking-uri", f"sqlite:///{d}/mlflow.db", "--quiet"])
            quality = _quality(Path(d))
        result = {
            "profile_rows": rows,
            "households": households,
            "machine": machine(),
            "features": feat,
            "train": train,
        }
        (HERE / "results" / f"train_{rows}.json").write_text(json.dumps(result, indent=2))
        (HERE / "results" / f"quality_{rows}.md").write_text(quality)
        print(
            f"{rows:>9,} profile rows ({households:,} households) | features {feat['seconds']:.1f} s, peak "
            f"{feat['max_rss_mb']:.0f} MB"
            f" | train {train['seconds']:.1f} s, peak {train['max_rss_mb']:.0f} MB | {machine()}"
        )
        print(quality)


def _quality(folder: Path) -> str:
    """The quality table of the run just made, read back from its MLflow artifacts."""
    import mlflow

    from nonrecours.training.card import markdown_table

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
    latest = max(client.search_model_versions("name='nonrecours'"), key=lambda v: int(v.version))
    parts = []
    for title, name in (
        ("Candidates (not seen receiving)", "quality_vs_baselines"),
        ("Rows the law engine finds eligible", "quality_law_eligible"),
        ("Next quarter, candidates", "quality_next_quarter"),
    ):
        path = client.download_artifacts(latest.run_id, f"evaluation/{name}.csv", str(folder))
        parts.append(f"{title}:\n\n{markdown_table(pd.read_csv(path))}\n")
    groups = pd.read_csv(client.download_artifacts(latest.run_id, "evaluation/group_recall.csv", str(folder)))
    parts.append(f"Recall at k per group (candidates):\n\n{markdown_table(groups)}\n")
    proxies = pd.read_csv(client.download_artifacts(latest.run_id, "evaluation/proxy_audit.csv", str(folder)))
    parts.append(f"Proxy audit:\n\n{markdown_table(proxies)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
