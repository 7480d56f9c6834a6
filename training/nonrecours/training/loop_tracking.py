"""The outreach loop in MLflow: one run for the loop (its table and a plot across rounds, updated
each round) and, nested in it, one run per round (its labels, every candidate's paired gain, the
gate's decision and the ranking chosen, with its trees).

Where it sits: called by ``nonrecours loop`` (:mod:`nonrecours.serving.loop` hands each round
over). The loop never touches the registry's aliases: the ranking in play is the loop's own,
recorded here and in ``round-N/ranking/``; ``@champion`` changes only through ``train``'s gate.
"""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from nonrecours.core.config import Settings
from nonrecours.training.plots import loop_figure
from nonrecours.training.registry import prepare_tracking_store

ROUNDS_TABLE = "loop/rounds.json"
ROUNDS_PLOT = "loop/rounds.png"
TRUE = "true "
"""The prefix of a round's figures from the truth (simulation only)."""


def loop_run(settings: Settings, uri: str, *, name: str, run_id: str | None, tags: dict[str, str]) -> str:
    """The loop's run: ``run_id`` when resuming, else a new one in the settings' experiment."""
    client = MlflowClient(tracking_uri=prepare_tracking_store(uri), registry_uri=uri)
    if run_id is not None:
        return run_id
    found = client.get_experiment_by_name(settings.registry.experiment)
    experiment = found.experiment_id if found else client.create_experiment(settings.registry.experiment)
    run = client.create_run(experiment, run_name=name, tags={"loop": "outreach", **tags})
    return run.info.run_id


def log_round(uri: str, parent: str, n: int, line: dict, gated, chosen) -> str:
    """Round ``n``'s run, nested in the loop's; returns its id."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_run(parent).info.experiment_id
    run = client.create_run(
        experiment,
        run_name=f"loop round {n}",
        tags={"mlflow.parentRunId": parent, "round": str(n), "gate": line["gate"], "ranking_next": chosen.name},
    )
    rid = run.info.run_id
    client.log_param(rid, "ranking_played", line["ranking played"])
    client.log_param(rid, "paired_with", line["paired with"])
    client.set_tag(rid, "contender_next", "-" if gated.contender is None else gated.contender.name)
    client.log_param(rid, "ranking_next", chosen.name)
    client.log_metric(rid, "labels", float(max(c.labels for c in gated.candidates.values())))
    for key, value in line.items():  # the agency's figures of the round (the truth's below)
        if isinstance(value, int | float) and key != "round" and not key.startswith(TRUE):
            client.log_metric(rid, key.replace("/", "_per_").replace(" ", "_"), float(value))
    for name, g in gated.gains.items():
        slug = name.replace(" ", "_")
        client.log_metric(rid, f"paired_gain.{slug}", g.value)
        client.log_metric(rid, f"paired_gain.{slug}.low", g.low)
    for key, value in line.items():
        if key.startswith(TRUE):
            client.log_metric(rid, "simulation." + key.removeprefix(TRUE).replace(" ", "_"), float(value))
    client.log_dict(rid, {"reasons": list(gated.choice.reasons)}, "gate/decision.json")
    client.log_dict(rid, {name: c.describe() for name, c in gated.candidates.items()}, "candidates.json")
    for file, text in chosen.to_strings().items():
        client.log_text(rid, text, f"ranking/{file}")
    for name, candidate in gated.candidates.items():  # every model the round learnt, kept or not
        if not candidate.is_prior:
            for file, text in candidate.to_strings().items():
                client.log_text(rid, text, f"candidates/{name.replace(' ', '_')}/{file}")
    client.set_terminated(rid)
    return rid


def log_table(uri: str, parent: str, table: pd.DataFrame, *, finished: bool) -> None:
    """The loop's table and its plot, in the loop's run (replaced each round)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.log_dict(parent, {"columns": list(table.columns), "rows": table.to_dict(orient="records")}, ROUNDS_TABLE)
    client.log_figure(parent, loop_figure(table), ROUNDS_PLOT)
    last = table.iloc[-1]
    client.log_metric(
        parent, "estimated_eur_per_month", float(last["estimated EUR/month caused"]), step=int(last["round"])
    )
    if finished:
        client.set_terminated(parent)
