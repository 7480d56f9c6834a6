"""The law engine on a real Dask cluster gives what it gives locally."""

from __future__ import annotations

import pandas as pd

from nonrecours.law.engine import run_law_engine
from nonrecours.law.parameters import load_law_parameters
from tests.conftest import LAW, combine, make_household, person


def test_partitions_on_a_dask_cluster_give_the_local_result(calibration):
    from dask.distributed import LocalCluster

    persons, households = combine(
        make_household(),
        make_household(person(age=70, activity="retired", pension_monthly=600.0), tenure="owner", rent=0.0),
        make_household(
            person(activity="employed", pay_recent=1500.0, pay_earlier=1500.0),
            person(role="partner"),
            person(role="child", age=2),
            person(role="child", age=5),
        ),
    )
    law = LAW.model_copy(update={"partition_size": 1})
    local = run_law_engine(persons, households, law=law, css=load_law_parameters().css, quiet=True)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = run_law_engine(
            persons, households, law=law, css=load_law_parameters().css, scheduler=cluster.scheduler_address, quiet=True
        )
    pd.testing.assert_frame_equal(local, remote)
    assert remote["eligible"].any()
