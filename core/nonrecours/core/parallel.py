"""Run one pure function over partitions: in this process, in local worker processes, or on a
Dask cluster given by its scheduler address. The same function runs in all three.

Where it sits: in the core, under every stage that scales with the number of households (the law
engine and scoring, through :func:`map_households`). Results come back in the order of the
partitions, whatever order they finish in.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
R = TypeVar("R")


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=quiet,
        transient=False,
    )


def map_partitions(
    fn: Callable[[T], R],
    partitions: Sequence[T],
    *,
    scheduler: str | None = None,
    workers: int = 1,
    description: str = "working",
    quiet: bool = False,
    start_method: str | None = None,
) -> list[R]:
    """``[fn(p) for p in partitions]``, spread over a Dask cluster or local processes.

    Local processes are forked by default (they inherit what the parent loaded, such as the
    OpenFisca tax-benefit system). Pass ``start_method="spawn"`` when the parent may have used
    OpenMP (LightGBM): a forked child that calls OpenMP again hangs.
    """
    results: list[R | None] = [None] * len(partitions)
    with _progress(quiet) as progress:
        task = progress.add_task(description, total=len(partitions))
        if scheduler:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed

            with Client(scheduler) as client:
                futures = client.map(fn, list(partitions), pure=False)
                index = {f.key: i for i, f in enumerate(futures)}
                for future in dask_completed(futures):
                    results[index[future.key]] = future.result()
                    progress.advance(task)
        elif workers > 1 and len(partitions) > 1:
            import multiprocessing

            context = multiprocessing.get_context(start_method) if start_method else None
            with ProcessPoolExecutor(max_workers=min(workers, len(partitions)), mp_context=context) as pool:
                futures = {pool.submit(fn, p): i for i, p in enumerate(partitions)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    progress.advance(task)
        else:
            for i, p in enumerate(partitions):
                results[i] = fn(p)
                progress.advance(task)
    return results  # type: ignore[return-value]  # every partition has its result by now


@dataclass(frozen=True)
class HouseholdPartition:
    """Some households and the persons who belong to them."""

    persons: pd.DataFrame
    households: pd.DataFrame


def _run_and_collect(fn: Callable[[pd.DataFrame, pd.DataFrame], R], part: HouseholdPartition) -> R:
    result = fn(part.persons, part.households)
    # An OpenFisca simulation is a web of reference cycles holding large arrays; the cycle
    # collector runs on object counts, not bytes, so without this a worker's memory grows by
    # about 1 GB per partition of 5,000 households.
    gc.collect()
    return result


def map_households(
    fn: Callable[[pd.DataFrame, pd.DataFrame], R],
    persons: pd.DataFrame,
    households: pd.DataFrame,
    *,
    n_parts: int,
    scheduler: str | None = None,
    workers: int = 1,
    description: str = "working",
    quiet: bool = False,
    start_method: str | None = None,
) -> list[R]:
    """``fn(persons, households)`` over ``n_parts`` partitions of ``households`` (each with its
    members from ``persons``, matched on ``household_id``), through :func:`map_partitions`; the
    memory of each partition is collected before the next. ``fn`` must be picklable (a module
    function, or a ``functools.partial`` of one) to run in other processes."""
    ids = households["household_id"].to_numpy()
    by_household = persons.groupby("household_id", sort=False).indices
    parts = []
    for chunk in (c for c in np.array_split(ids, max(1, n_parts)) if len(c)):
        rows = [by_household[h] for h in chunk if h in by_household]
        members = persons.iloc[np.concatenate(rows)] if rows else persons.iloc[:0]
        parts.append(HouseholdPartition(members, households[households["household_id"].isin(chunk)]))
    return map_partitions(
        partial(_run_and_collect, fn),
        parts,
        scheduler=scheduler,
        workers=workers,
        description=description,
        quiet=quiet,
        start_method=start_method,
    )
