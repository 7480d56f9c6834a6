"""Campaigns, the field and learning from them: what ``nonrecours campaign``, ``outreach`` and
``train --labels observed`` do, over the layers below.

Where it sits: in the application layer, beside :mod:`nonrecours.app.application` (whose
helpers it uses). Production paths (``campaign``, ``train --labels observed``) read no truth;
``outreach`` plays the field from the truth's potential outcomes and records what agents would
through :meth:`nonrecours.serving.decision_log.DecisionLog.record_outcomes`, the code behind
``POST /outcomes``; the simulation's evaluation reads the next quarter's truth only when it is
there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from nonrecours.app.application import NEXT_QUARTER, AppError, Champion, load_champion, read_extract, read_tables, score, with_population_month
from nonrecours.core.config import Settings
from nonrecours.core.schema import BENEFITS, CONTACTED_ARMS, HOUSEHOLDS, OUTCOMES, PROFILES
from nonrecours.serving.campaign import CAMPAIGN_COLUMNS, CampaignPlan, plan_campaign

RANKINGS = ("champion", "rules", "need", "uplift")
"""What ranks a campaign: the champion (trained on the simulation's truth, or an agency's labels),
the rules (cold start), or the models of a ``train --labels observed`` run: ``need`` (P(right opened
| contacted) x amount) or ``uplift`` (what a contact adds x amount)."""
RULES_REASON = "eligible on the agency's data (OpenFisca-France) and not seen receiving it: ranked by the law engine's amount (no model yet)"
FIELD_SENDER = "field-simulation"


def rules_scored(individuals: pd.DataFrame, households: pd.DataFrame, settings: Settings, *, quiet: bool) -> pd.DataFrame:
    """The extract ranked by the rules (cold start: no model has learned anything yet), in the
    scored form the decision log keeps: the law engine's amount where eligible on the agency's
    data and not seen receiving, as ``expected_unclaimed_monthly``."""
    from nonrecours.features.profiles import build_profiles
    from nonrecours.law.situation import entitlements_from_observed
    from nonrecours.training.baselines import rules_value

    entitlements = entitlements_from_observed(individuals, households, law=settings.law, quiet=quiet, description="law engine: rules ranking")
    profiles = build_profiles(individuals, households, entitlements)
    value = rules_value(profiles)
    return profiles.assign(
        p_unclaimed=(value > 0).astype(float),
        estimated_monthly_amount=profiles["law_amount"].to_numpy(dtype=float),
        expected_unclaimed_monthly=value,
        reasons=[[RULES_REASON] if v > 0 else [] for v in value],
    )


def campaign_plan(capacity: int, settings: Settings, seed: int) -> CampaignPlan:
    """The campaign's design from the settings (``campaign``) and the command's capacity and seed."""
    c = settings.campaign
    try:
        return CampaignPlan(capacity=capacity, holdout_share=c.holdout_share, exploration_share=c.exploration_share, strata=c.strata, seed=seed)
    except ValueError as exc:
        raise AppError(str(exc)) from None


def load_observed(run_id: str, uri: str):
    """The need and uplift models a ``train --labels observed`` run logged."""
    from nonrecours.training.observed import ObservedModels

    mlflow.set_tracking_uri(uri)
    try:
        return ObservedModels.from_strings({name: mlflow.artifacts.load_text(f"runs:/{run_id}/models/{name}.txt") for name in ObservedModels.PARTS})
    except mlflow.exceptions.MlflowException as exc:
        raise AppError(f"--model-run {run_id}: {str(exc).splitlines()[0]} (give the run id `train --labels observed` printed)") from None


def observed_scored(individuals: pd.DataFrame, households: pd.DataFrame, models, settings: Settings, *, ranking: str, quiet: bool) -> pd.DataFrame:
    """The extract scored by observed-label models, in the scored form the decision log keeps:
    ``p_unclaimed`` is P(right opened | contacted) (need) or the uplift, times the estimated amount
    as ``expected_unclaimed_monthly``; reasons from the need model's TreeSHAP contributions."""
    from nonrecours.features.profiles import build_profiles
    from nonrecours.law.situation import entitlements_from_observed
    from nonrecours.serving.reasons import reasons
    from nonrecours.training.model import typical_amounts

    entitlements = entitlements_from_observed(individuals, households, law=settings.law, quiet=quiet, description=f"law engine: {ranking} ranking")
    profiles = build_profiles(individuals, households, entitlements)
    need = models.need_scorer(typical_amounts(profiles))
    p = need.predict(profiles) if ranking == "need" else models.uplift(profiles)
    amount = need.estimated_amount(profiles)
    k = settings.serving.reasons_per_score
    return profiles.assign(p_unclaimed=p, estimated_monthly_amount=amount, expected_unclaimed_monthly=p * amount, reasons=reasons(profiles, need.contributions(profiles), k))


@dataclass
class CampaignResult:
    table: pd.DataFrame
    ranked_by: str
    model_name: str
    model_version: str
    capacity: int


def run_campaign(folder: Path, capacity: int | None, seed: int, settings: Settings, uri: str, log, *, ranking: str, scheduler: str | None, quiet: bool,
                 model_run: str | None = None) -> CampaignResult:
    """Score the extract in ``folder`` (the champion, the rules at cold start, or the observed-label
    models of run ``model_run``), pick ``capacity`` contacts (default: ``training.capacity_share``
    of its households) and log every campaign household with its arm (``log``: a decision log)."""
    if ranking not in RANKINGS:
        raise AppError(f"--ranking {ranking!r}: expected one of {list(RANKINGS)}")
    if ranking in ("need", "uplift") and model_run is None:
        raise AppError(f"--ranking {ranking} needs --model-run RUN: the run `train --labels observed` printed")
    individuals, households = read_extract(folder)
    settings = with_population_month(settings, folder)
    plan = campaign_plan(capacity or max(1, int(round(settings.training.capacity_share * len(households)))), settings, seed)
    if ranking == "champion":
        champion: Champion = load_champion(settings, uri)  # type: ignore[assignment]
        scored = score(individuals, households, champion, settings, n_reasons=settings.serving.reasons_per_score, scheduler=scheduler, quiet=quiet)
        name, version = champion.name, champion.version
    elif ranking == "rules":
        scored = rules_scored(individuals, households, settings, quiet=quiet)
        name, version = "rules", "0"
    else:
        scored = observed_scored(individuals, households, load_observed(str(model_run), uri), settings, ranking=ranking, quiet=quiet)
        name, version = f"observed-{ranking}", str(model_run)
    try:
        table = plan_campaign(scored, plan)
    except ValueError as exc:
        raise AppError(str(exc)) from None
    decision_ids = log.record_campaign(scored, table, model_name=name, model_version=version)
    table["decision_id"] = table["household_id"].map(decision_ids).to_numpy()
    return CampaignResult(table, ranking, name, version, plan.capacity)


def read_campaign_file(path: Path) -> pd.DataFrame:
    """A campaign file written by ``nonrecours campaign``, checked for its columns."""
    if not path.exists():
        raise AppError(f"--campaign {path}: no such file (write one with `nonrecours campaign`)")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [c for c in (*CAMPAIGN_COLUMNS, "decision_id") if c not in table.columns]
    if missing:
        raise AppError(f"--campaign {path}: missing column(s) {missing}; expected the file `nonrecours campaign` writes")
    table["benefits"] = table["benefits"].fillna("").astype(str)
    return table


def play_field(folder: Path, campaign: pd.DataFrame, log, *, outcome_date: date) -> pd.DataFrame:
    """Simulation only: what agents would record after the campaign's contacts, from the truth's
    potential outcomes in ``folder``, recorded through the decision log's outcome path (an
    idempotency key per household, benefit and campaign: running it twice records once).
    Returns the records."""
    from nonrecours.data.field import field_outcomes
    from nonrecours.serving.decision_log import Outcome

    (truth,) = read_tables(folder, OUTCOMES, hint=" (outreach plays the field from a synthetic population's truth)")
    try:
        records = field_outcomes(campaign, truth)
    except ValueError as exc:
        raise AppError(str(exc)) from None
    decision = campaign.set_index("household_id")["decision_id"]
    cid = str(campaign["campaign_id"].iloc[0])
    batch = [
        Outcome.from_result(
            int(r.household_id), r.benefit, r.result, outcome_date, amount_granted=None if np.isnan(r.amount_granted) else float(r.amount_granted),
            campaign_id=cid, decision_id=int(decision[r.household_id]), idempotency_key=f"{cid}/{int(decision[r.household_id])}/{r.benefit}", sender=FIELD_SENDER,
        )
        for r in records.itertuples(index=False)
    ]
    log.record_outcomes(batch)
    return records


# --- learning from observed labels --------------------------------------------------------------


def _next_receipt(folder: Path, assignments: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Per campaign decision and benefit: seen receiving it in the next extract (NA where the
    agency does not see the benefit, or the household left the extract)."""
    from nonrecours.serving.decision_log import pseudonymise

    (households,) = read_tables(folder, HOUSEHOLDS, hint=f" (the next quarter's extract: `--next-extract`, default INPUT/{NEXT_QUARTER})")
    pseudonym = households["household_id"].map(lambda h: pseudonymise(int(h), key))
    decision = pd.Series(assignments["decision_id"].to_numpy(), index=assignments["household_pseudonym"].to_numpy())
    ids = pseudonym.map(decision)
    frames = []
    for b in BENEFITS:
        seen = households[f"receives_{b}"].astype("Float64")
        frames.append(pd.DataFrame({"household_id": ids.to_numpy(), "benefit": b, "receives_next": seen.to_numpy()}))
    out = pd.concat(frames, ignore_index=True)
    return out[out["household_id"].notna()].astype({"household_id": "int64"})


@dataclass
class ObservedTraining:
    rows: pd.DataFrame
    models: object
    holdout: object
    off_policy: object
    simulation: SimulatedGains | None
    run_id: str


def train_observed(folder: Path, campaign_id: str, log, settings: Settings, uri: str, *, next_extract: Path | None, quiet: bool) -> ObservedTraining:
    """Fit the need and uplift models on campaign ``campaign_id``'s recorded outcomes and the
    next extract's claims, estimate the campaign's effect and the uplift ranking's value from the
    randomised arms, and log it all to MLflow. In simulation, when the next quarter's truth is
    there, the policies' true additional euros are computed and logged beside."""
    from nonrecours.serving.decision_log import profiles_from_log
    from nonrecours.training.observed import NotEnoughLabels, fit_observed, observed_rows
    from nonrecours.training.policies import claimed_euros_observed, holdout_effect, ipw_value

    try:
        assignments = log.read_campaign(campaign_id)
    except LookupError as exc:
        raise AppError(str(exc)) from None
    decisions = log.read()
    decisions = decisions[decisions["id"].isin(assignments["decision_id"])]
    profiles = profiles_from_log(decisions)
    recorded = log.read_outcomes()
    recorded = recorded[recorded["campaign_id"] == campaign_id].rename(columns={"decision_id": "household_id"})
    campaign = assignments.rename(columns={"decision_id": "household_id"}).assign(contacted=lambda d: d["arm"].isin(CONTACTED_ARMS))
    later = next_extract or folder / NEXT_QUARTER
    receipt = _next_receipt(later, assignments, log.key)
    rows = observed_rows(profiles[PROFILES.names], campaign, recorded[["household_id", "benefit", "result"]], receipt)
    try:
        models = fit_observed(rows, settings.training)
    except NotEnoughLabels as exc:
        raise AppError(str(exc)) from None
    euros = claimed_euros_observed(rows)
    holdout = holdout_effect(campaign, euros)
    capacity = int((campaign["contacted"]).sum())
    uplift_value = pd.Series(models.uplift(rows) * rows["law_amount"].to_numpy(dtype=float)).groupby(rows["household_id"].to_numpy()).sum()
    off_policy = ipw_value(campaign, euros, uplift_value, capacity)
    simulation = _simulated_gains(later, models, settings, uri)
    run_id = _log_observed(rows, models, holdout, off_policy, simulation, campaign_id, settings, uri)
    return ObservedTraining(rows, models, holdout, off_policy, simulation, run_id)


def _simulated_gains(folder: Path, models, settings: Settings, uri: str) -> SimulatedGains | None:
    """Simulation only: each policy's true additional euros on the next quarter at the default
    capacity, when that quarter's profiles and truth are on disk (else None)."""
    from nonrecours.training.baselines import rules_value
    from nonrecours.training.model import estimated_amount, typical_amounts
    from nonrecours.training.policies import household_gain, true_gain

    if not ((folder / "profiles.parquet").exists() and (folder / "outcomes.parquet").exists()):
        return None
    profiles, truth = read_tables(folder, PROFILES, OUTCOMES)
    hid = profiles["household_id"].to_numpy()
    amount = estimated_amount(profiles, typical_amounts(profiles))

    def per_household(v: np.ndarray) -> pd.Series:
        return pd.Series(v).groupby(hid).sum()

    values = {"rules": per_household(rules_value(profiles)), "need (observed labels)": per_household(models.p_need(profiles) * amount),
              "uplift (observed labels)": per_household(models.uplift(profiles) * amount)}
    try:
        champion = load_champion(settings, uri)
    except AppError:
        champion = None
    if champion is not None:
        values["oracle (trained on the truth)"] = per_household(champion.scorer.predict(profiles) * champion.scorer.estimated_amount(profiles))
    gain = household_gain(truth)
    k = max(1, int(round(settings.training.capacity_share * len(gain))))
    table, curves = true_gain(values, gain, k)
    return SimulatedGains(table, curves, k)


@dataclass
class SimulatedGains:
    """Simulation only: each policy's true additional euros at capacity, and its Qini curve."""

    table: pd.DataFrame
    curves: dict
    capacity: int


def _log_observed(rows, models, holdout, off_policy, simulation, campaign_id: str, settings: Settings, uri: str) -> str:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(settings.registry.experiment)
    with mlflow.start_run(run_name=f"observed labels, campaign {campaign_id}", tags={"labels": "observed", "campaign_id": campaign_id}) as run:
        mlflow.log_params({"labels": "observed", "campaign_id": campaign_id, "uplift_learner": "T-learner, LightGBM, inverse-propensity weights"})
        mlflow.log_metrics({
            "rows": len(rows), "rows_contacted": models.n_contacted, "rows_uncontacted": models.n_control,
            "holdout_effect_eur": holdout.value, "holdout_effect_low": holdout.low, "holdout_effect_high": holdout.high,
            "uplift_ipw_eur": off_policy.value, "uplift_ipw_se": off_policy.standard_error,
        })
        for name, text in models.to_strings().items():
            mlflow.log_text(text, f"models/{name}.txt")
        if simulation is not None:
            from nonrecours.training.plots import qini_figure

            for r in simulation.table.itertuples(index=False):
                name = r.policy.split(" ")[0]
                mlflow.log_metrics({f"simulation.additional_eur.{name}": r.additional_monthly, f"simulation.auuc.{name}": r.auuc})
            mlflow.log_table(simulation.table, "simulation/additional_euros.json")
            mlflow.log_figure(qini_figure(simulation.curves, simulation.capacity), "simulation/qini.png")
        return run.info.run_id


def today() -> date:
    return datetime.now(timezone.utc).date()


def round_gain(folder: Path, campaign: pd.DataFrame):
    """Simulation only: what a round's contacts caused, from ``folder``'s truth (None without it)."""
    from nonrecours.training.policies import campaign_gain, household_gain

    if not (folder / "outcomes.parquet").exists():
        return None
    (truth,) = read_tables(folder, OUTCOMES)
    return campaign_gain(campaign, household_gain(truth))
