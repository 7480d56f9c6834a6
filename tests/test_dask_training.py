"""Training with lightgbm.dask on a real (local) Dask cluster."""

from __future__ import annotations

import numpy as np

from nonrecours.core.config import TrainingConfig
from nonrecours.training.model import fit_lightgbm_dask


def test_the_same_model_trains_on_a_dask_cluster(evaluation, tables):
    from dask.distributed import LocalCluster

    from nonrecours.training.evaluate import join_labels

    data = join_labels(tables["profiles"], tables["outcomes"])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        scorer = fit_lightgbm_dask(
            data, data["target"].to_numpy(dtype=bool), TrainingConfig(), cluster.scheduler_address, n_rounds=60
        )
    p = scorer.predict(evaluation.test)
    y = evaluation.test["target"].to_numpy(dtype=bool)
    assert p.shape == y.shape and np.isfinite(p).all()
    assert p[y].mean() > 3 * p[~y].mean()  # it learned the target, not noise
