"""``nonrecours train --labels observed``: learning from a campaign's outcomes, as an agency can.

Where it sits: the run over :mod:`nonrecours.training.observed` (the labels and the models) and
:mod:`nonrecours.training.policies` (the estimates), with its MLflow run and the gate
(:func:`nonrecours.training.gate.decide_observed`). What it learns from is :class:`CampaignLabels`:
the campaign's households with their arm and propensity, the profiles logged with its decisions,
the outcomes agents recorded and the next extract's receipts (:mod:`nonrecours.serving.outreach`
reads them from the decision log). No truth is read to learn or to gate; in simulation, when the
next quarter's truth is on disk, every policy's true additional euros are logged beside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import NotFound
from nonrecours.core.io import read_tables
from nonrecours.core.schema import OUTCOMES, PROFILES
from nonrecours.training.baselines import rules_value
from nonrecours.training.gate import Decision, decide_observed
from nonrecours.training.model import estimated_amount, typical_amounts
from nonrecours.training.observed import ObservedModels, fit_observed, observed_rows
from nonrecours.training.policies import (
    Estimate,
    claimed_euros_observed,
    holdout_effect,
    household_gain,
    ipw_value,
    true_gain,
)
from nonrecours.training.registry import (
    OUTREACH_ARTIFACTS,
    load_champion,
    load_observed,
    outreach_champion,
    prepare_tracking_store,
    register_outreach_models,
)

UPLIFT_LEARNER = "T-learner, LightGBM, inverse-propensity weights"


@dataclass(frozen=True)
class CampaignLabels:
    """What an agency holds about one campaign: its households (``household_id`` is the decision id,
    ``arm``, ``propensity``, ``benefits``, ``contacted``), the profiles logged with those decisions
    (with the ranking's ``expected_unclaimed_monthly``), the outcomes recorded (``household_id``,
    ``benefit``, ``result``), the next extract's receipts (``household_id, benefit, receives_next``)
    and the ranking that chose the campaign."""

    campaign_id: str
    campaign: pd.DataFrame
    profiles: pd.DataFrame
    recorded: pd.DataFrame
    receipt: pd.DataFrame
    chosen_by: str


@dataclass(frozen=True)
class SimulatedGains:
    """Simulation only: each policy's true additional euros at capacity, and its Qini curve."""

    table: pd.DataFrame
    curves: dict
    capacity: int


@dataclass
class ObservedTraining:
    rows: pd.DataFrame
    models: ObservedModels
    holdout: Estimate
    off_policy: Estimate
    simulation: SimulatedGains | None
    run_id: str
    incumbents: dict[str, Estimate]
    decision: Decision
    version: str


def _per_household(values: np.ndarray, households: np.ndarray) -> pd.Series:
    return pd.Series(values).groupby(households).sum()


def train_observed(
    labels: CampaignLabels, settings: Settings, uri: str, *, next_folder: Path, user: str
) -> ObservedTraining:
    """Fit the need and uplift models on the campaign's labels, estimate the campaign's effect and
    the uplift ranking's value from the randomised arms, log it all to MLflow and register the
    models, promoted to @champion when their off-policy value is at least every incumbent
    ranking's (the gate)."""
    rows = observed_rows(
        labels.profiles[PROFILES.names],
        labels.campaign,
        labels.recorded[["household_id", "benefit", "result"]],
        labels.receipt,
    )
    models = fit_observed(rows, settings.training)
    euros = claimed_euros_observed(rows)
    campaign = labels.campaign
    holdout = holdout_effect(campaign, euros)
    capacity = int(campaign["contacted"].sum())
    hid = rows["household_id"].to_numpy()
    uplift_value = _per_household(models.uplift(rows) * rows["law_amount"].to_numpy(dtype=float), hid)
    off_policy = ipw_value(campaign, euros, uplift_value, capacity)
    incumbents = {
        name: ipw_value(campaign, euros, value, capacity)
        for name, value in _incumbent_values(rows, labels, settings, uri).items()
    }
    decision = decide_observed(off_policy, incumbents)
    simulation = simulated_gains(next_folder, models, settings, uri)
    run_id, version = _log_observed(
        rows,
        models,
        holdout,
        off_policy,
        incumbents,
        decision,
        simulation,
        labels.campaign_id,
        settings,
        uri,
        user=user,
    )
    return ObservedTraining(rows, models, holdout, off_policy, simulation, run_id, incumbents, decision, version)


def _incumbent_values(rows: pd.DataFrame, labels: CampaignLabels, settings: Settings, uri: str) -> dict[str, pd.Series]:
    """Per campaign household, the value each ranking the challenger must beat gives it: the
    ranking that chose the campaign (its logged scores), the rules, and the outreach models'
    current @champion when there is one."""
    hid = rows["household_id"].to_numpy()
    values = {
        f"the ranking that chose the campaign ({labels.chosen_by})": labels.profiles.groupby("household_id")[
            "expected_unclaimed_monthly"
        ].sum(),
        "the rules": _per_household(rules_value(rows), hid),
    }
    found = outreach_champion(settings.registry, uri)
    if found is not None:
        champion = load_observed(found[0], uri)
        name = f"the current {settings.registry.outreach_model_name}@champion (version {found[1]})"
        values[name] = _per_household(champion.uplift(rows) * rows["law_amount"].to_numpy(dtype=float), hid)
    return values


def simulated_gains(folder: Path, models: ObservedModels, settings: Settings, uri: str) -> SimulatedGains | None:
    """Simulation only: each policy's true additional euros on the quarter in ``folder`` at the
    default capacity, when its profiles and truth are on disk (else None)."""
    if not ((folder / f"{PROFILES.name}.parquet").exists() and (folder / f"{OUTCOMES.name}.parquet").exists()):
        return None
    profiles, truth = read_tables(folder, PROFILES, OUTCOMES)
    hid = profiles["household_id"].to_numpy()
    amount = estimated_amount(profiles, typical_amounts(profiles))
    values = {
        "rules": _per_household(rules_value(profiles), hid),
        "need (observed labels)": _per_household(models.p_need(profiles) * amount, hid),
        "uplift (observed labels)": _per_household(models.uplift(profiles) * amount, hid),
    }
    try:
        champion = load_champion(settings.registry, uri)
    except NotFound:
        champion = None
    if champion is not None:
        scorer = champion.scorer
        values["oracle (trained on the truth)"] = _per_household(
            scorer.predict(profiles) * scorer.estimated_amount(profiles), hid
        )
    gain = household_gain(truth)
    k = max(1, round(settings.training.capacity_share * len(gain)))
    table, curves = true_gain(values, gain, k)
    return SimulatedGains(table, curves, k)


def _log_observed(
    rows: pd.DataFrame,
    models: ObservedModels,
    holdout: Estimate,
    off_policy: Estimate,
    incumbents: dict[str, Estimate],
    decision: Decision,
    simulation: SimulatedGains | None,
    campaign_id: str,
    settings: Settings,
    uri: str,
    *,
    user: str,
) -> tuple[str, str]:
    """One MLflow run with the labels' counts, the observable estimates, the models and the
    simulation's figures; the models registered with the gate's alias. Returns run id and version."""
    mlflow.set_tracking_uri(prepare_tracking_store(uri))
    mlflow.set_experiment(settings.registry.experiment)
    tags = {"labels": "observed", "campaign_id": campaign_id}
    with mlflow.start_run(run_name=f"observed labels, campaign {campaign_id}", tags=tags) as run:
        mlflow.log_params({**tags, "uplift_learner": UPLIFT_LEARNER})
        mlflow.log_metrics(
            {
                "rows": len(rows),
                "rows_contacted": models.n_contacted,
                "rows_uncontacted": models.n_control,
                "holdout_effect_eur": holdout.value,
                "holdout_effect_low": holdout.low,
                "holdout_effect_high": holdout.high,
                "uplift_ipw_eur": off_policy.value,
                "uplift_ipw_low": off_policy.low,
                "uplift_ipw_se": off_policy.standard_error,
            }
        )
        mlflow.log_dict({name: e.__dict__ for name, e in incumbents.items()}, "gate/incumbents_ipw.json")
        for name, text in models.to_strings().items():
            mlflow.log_text(text, f"{OUTREACH_ARTIFACTS}/{name}.txt")
        if simulation is not None:
            _log_simulation(simulation)
        version, _ = register_outreach_models(
            mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri),
            settings.registry,
            run,
            alias=decision.alias,
            reason="; ".join(decision.reasons),
            user=user,
        )
        return run.info.run_id, version


def _log_simulation(simulation: SimulatedGains) -> None:
    from nonrecours.training.plots import qini_figure

    for r in simulation.table.itertuples(index=False):
        name = str(r.policy).split(" ")[0]
        mlflow.log_metrics(
            {f"simulation.additional_eur.{name}": r.additional_monthly, f"simulation.auuc.{name}": r.auuc}
        )
    mlflow.log_table(simulation.table, "simulation/additional_euros.json")
    mlflow.log_figure(qini_figure(simulation.curves, simulation.capacity), "simulation/qini.png")
