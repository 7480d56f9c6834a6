"""`mlflow run` drives the pipeline through the MLproject file (slow tier)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mlflow_run_main_runs_the_pipeline_and_registers_a_model(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    # A fresh environment for MLflow: earlier tests in this process set MLFLOW_* variables
    # (an experiment id of their own store) that `mlflow run` would otherwise inherit.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    result = subprocess.run(
        [
            f"{bin_dir}/mlflow",
            "run",
            str(ROOT),
            "--env-manager",
            "local",
            "--experiment-name",
            "nonrecours",
            "-P",
            "households=300",
            "-P",
            f"out={tmp_path / 'pop'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "pop" / "profiles.parquet").exists()
    versions = mlflow.MlflowClient(tracking_uri=uri).search_model_versions("name='nonrecours'")
    assert len(versions) == 1

    # The agents' worklist and the auditors' report, as entry points. 300 households rarely pass
    # the promotion gate, so version 1 is made champion by hand first.
    pop = tmp_path / "pop"
    (pop / "worklist.csv").unlink(missing_ok=True)
    promoted = subprocess.run(
        [
            f"{bin_dir}/nonrecours",
            "promote",
            "--version",
            "1",
            "--reason",
            "test of the entry points",
            "--tracking-uri",
            uri,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    scored = subprocess.run(
        [
            f"{bin_dir}/mlflow",
            "run",
            str(ROOT),
            "-e",
            "score",
            "--env-manager",
            "local",
            "--experiment-name",
            "nonrecours",
            "-P",
            f"out={pop}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert len(pd.read_csv(pop / "worklist.csv")) > 0
    reports = tmp_path / "reports"
    monitored = subprocess.run(
        [
            f"{bin_dir}/mlflow",
            "run",
            str(ROOT),
            "-e",
            "monitor",
            "--env-manager",
            "local",
            "--experiment-name",
            "nonrecours",
            "-P",
            f"reference={pop}",
            "-P",
            f"current={pop}",
            "-P",
            f"reports={reports}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    written = [json.loads(p.read_text()) for p in reports.glob("report-*.json")]
    assert len(written) == 1, monitored.stderr[-3000:]
    # a breach (300 households make noisy groups) must show as a failed run, a pass as a success
    assert (monitored.returncode == 0) == (written[0]["verdict"] == "pass"), (
        written[0]["failures"],
        monitored.stderr[-2000:],
    )
