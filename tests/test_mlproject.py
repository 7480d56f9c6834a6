"""`mlflow run` drives the pipeline through the MLproject file (slow tier)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
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
        [f"{bin_dir}/mlflow", "run", str(ROOT), "--env-manager", "local", "--experiment-name", "nonrecours", "-P", "households=300", "-P", f"out={tmp_path / 'pop'}"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "pop" / "profiles.parquet").exists()
    versions = mlflow.MlflowClient(tracking_uri=uri).search_model_versions("name='nonrecours'")
    assert len(versions) == 1
