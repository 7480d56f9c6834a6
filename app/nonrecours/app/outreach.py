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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
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
FIELD_SENDER = "field-simulation"


def rules_scored(individuals: pd.DataFrame, households: pd.DataFrame, settings: Settings, *, quiet: bool) -> pd.DataFrame:
    """The extract ranked by the rules (cold start: no model has learned anything yet), in the
    scored form the decision log keeps: the law engine's amount where eligible on the agency's
    data and not seen receiving, as ``expected_unclaimed_monthly``."""
    from nonrecours.core.catalogue import catalogue
    from nonrecours.features.profiles import build_profiles
    from nonrecours.law.situation import entitlements_from_observed
    from nonrecours.training.baselines import rules_value

    entitlements = entitlements_from_observed(individuals, households, law=settings.law, quiet=quiet, description="law engine: rules ranking")
    profiles = build_profiles(individuals, households, entitlements)
    value = rules_value(profiles)
    said = catalogue(settings.serving.language)("reasons.rules")
    return profiles.assign(
        p_unclaimed=(value > 0).astype(float),
        estimated_monthly_amount=profiles["law_amount"].to_numpy(dtype=float),
        expected_unclaimed_monthly=value,
        reasons=[[said] if v > 0 else [] for v in value],
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
    from nonrecours.training.registry import OUTREACH_ARTIFACTS

    mlflow.set_tracking_uri(uri)
    try:
        return ObservedModels.from_strings({name: mlflow.artifacts.load_text(f"runs:/{run_id}/{OUTREACH_ARTIFACTS}/{name}.txt") for name in ObservedModels.PARTS})
    except mlflow.exceptions.MlflowException as exc:
        raise AppError(f"--model-run {run_id}: {str(exc).splitlines()[0]} (give the run id `train --labels observed` printed)") from None


def outreach_champion(settings: Settings, uri: str) -> tuple[str, str] | None:
    """The run and registered version of the outreach models' @champion (None when there is none)."""
    from nonrecours.training.gate import CHAMPION
    from nonrecours.training.registry import find_alias, prepare_tracking_store

    version = find_alias(mlflow.MlflowClient(tracking_uri=prepare_tracking_store(uri), registry_uri=uri), settings.registry.outreach_model_name, CHAMPION)
    return None if version is None else (str(version.run_id), str(version.version))


def observed_models_for(settings: Settings, uri: str, model_run: str | None):
    """The need and uplift models to rank by, with the version the decision log records: those of
    run ``model_run``, else the outreach models' @champion."""
    if model_run is not None:
        return load_observed(model_run, uri), str(model_run)
    found = outreach_champion(settings, uri)
    if found is None:
        raise AppError(f"no {settings.registry.outreach_model_name}@champion in the registry: run `nonrecours train --labels observed --campaign ID` "
                       "(the gate promotes it), or give --model-run RUN")
    return load_observed(found[0], uri), found[1]


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
    return profiles.assign(p_unclaimed=p, estimated_monthly_amount=amount, expected_unclaimed_monthly=p * amount, reasons=reasons(profiles, need.contributions(profiles), k, settings.serving.language))


@dataclass
class Ranked:
    """An extract scored for ranking, and what scored it (as the decision log records it).
    ``explainer``, where reasons are left to be computed for the rows read (the champion's):
    ``explainer(scored, where=mask)`` gives them for the rows of ``mask``."""

    scored: pd.DataFrame
    model_name: str
    model_version: str
    explainer: Callable[..., pd.DataFrame] | None = None

    def explained(self, where: np.ndarray) -> pd.DataFrame:
        """The scored rows with reasons for those of ``where`` (all already have them without an explainer)."""
        return self.scored if self.explainer is None else self.explainer(self.scored, where=where)


def worklist_of(ranked: Ranked, *, capacity: int | None, min_probability: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The worklist of a ranked extract, and the scored rows with reasons computed for the
    worklist's rows only (what agents read; the decision log records the same)."""
    from nonrecours.serving.scoring import worklist_rows, worklist_table

    rows = worklist_rows(ranked.scored, capacity=capacity, min_probability=min_probability)
    scored = ranked.explained(ranked.scored.index.isin(rows.index))
    return scored, worklist_table(rows.assign(reasons=scored.loc[rows.index, "reasons"]))


def rank_extract(individuals: pd.DataFrame, households: pd.DataFrame, settings: Settings, uri: str, *, ranking: str, scheduler: str | None, quiet: bool,
                 model_run: str | None = None, explain_all: bool = False) -> Ranked:
    """The extract scored by ``ranking`` (see ``RANKINGS``): the champion, the rules, or the need
    or uplift model (of run ``model_run``, else the outreach models' @champion). The scored rows
    are the worklist's, whatever ranks them: ``expected_unclaimed_monthly`` is the ranking key.
    The champion's reasons are left for :meth:`Ranked.explained` to give the rows read, unless
    ``explain_all`` (a list of every household): then the partitions' workers compute them."""
    if ranking not in RANKINGS:
        raise AppError(f"--ranking {ranking!r}: expected one of {list(RANKINGS)}")
    if ranking == "champion":
        from nonrecours.serving.scoring import explain

        champion: Champion = load_champion(settings, uri)  # type: ignore[assignment]
        k = settings.serving.reasons_per_score
        scored = score(individuals, households, champion, settings, n_reasons=k if explain_all else 0, scheduler=scheduler, quiet=quiet)
        return Ranked(scored, champion.name, champion.version, None if explain_all else partial(explain, scorer=champion.scorer, n_reasons=k, language=settings.serving.language))
    if ranking == "rules":
        return Ranked(rules_scored(individuals, households, settings, quiet=quiet), "rules", "0")
    models, version = observed_models_for(settings, uri, model_run)
    return Ranked(observed_scored(individuals, households, models, settings, ranking=ranking, quiet=quiet), f"observed-{ranking}", version)


@dataclass
class CampaignResult:
    table: pd.DataFrame
    ranked_by: str
    model_name: str
    model_version: str
    capacity: int


def run_campaign(folder: Path, capacity: int | None, seed: int, settings: Settings, uri: str, log, *, ranking: str, scheduler: str | None, quiet: bool,
                 model_run: str | None = None) -> CampaignResult:
    """Score the extract in ``folder`` (:func:`rank_extract`), pick ``capacity`` contacts (default:
    ``training.capacity_share`` of its households) and log every campaign household with its arm
    (``log``: a decision log)."""
    individuals, households = read_extract(folder)
    settings = with_population_month(settings, folder)
    plan = campaign_plan(capacity or max(1, int(round(settings.training.capacity_share * len(households)))), settings, seed)
    ranked = rank_extract(individuals, households, settings, uri, ranking=ranking, scheduler=scheduler, quiet=quiet, model_run=model_run)
    try:
        table = plan_campaign(ranked.scored, plan)
    except ValueError as exc:
        raise AppError(str(exc)) from None
    scored = ranked.explained(ranked.scored["household_id"].isin(table.loc[table["contacted"], "household_id"]).to_numpy())  # reasons for the households agents contact
    decision_ids = log.record_campaign(scored, table, model_name=ranked.model_name, model_version=ranked.model_version)
    table["decision_id"] = table["household_id"].map(decision_ids).to_numpy()
    return CampaignResult(table, ranking, ranked.model_name, ranked.model_version, plan.capacity)


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


def assign_campaign(campaign_path: Path, folder: Path, team: str, settings: Settings, url: str, *, quiet: bool = False) -> tuple[str, int]:
    """Give a campaign's contacted households to an agents' team (``nonrecours agents assign``):
    their rank, territory and the legal basis of each benefit, computed by OpenFisca-France on the
    extract the campaign was made from (one simulation, about a second per thousand households).
    Returns the campaign id and the households assigned. Reads no truth."""
    from nonrecours.app.application import on_log_tables
    from nonrecours.law.basis import legal_basis
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.law.situation import observed_situation
    from nonrecours.serving.caseload import assign

    campaign = read_campaign_file(campaign_path)
    contacted = campaign[campaign["contacted"].astype(bool)]
    individuals, households = read_extract(folder)
    wanted = households["household_id"].isin(contacted["household_id"])
    households, individuals = households[wanted], individuals[individuals["household_id"].isin(contacted["household_id"])]
    settings = with_population_month(settings, folder)
    persons, hh, _ = observed_situation(individuals, households, load_law_parameters())
    if not quiet:
        print(f"legal basis of {len(hh):,} households (OpenFisca-France, {settings.law.reference_month})")
    basis = legal_basis(persons, hh, reference_month=settings.law.reference_month) if len(hh) else {}
    depcom = households.set_index("household_id")["depcom"].astype(str)
    added = on_log_tables(assign, url, campaign, team, depcom=depcom, basis=basis)
    return str(campaign["campaign_id"].iloc[0]), added


DEMO_AGENT, DEMO_TEAM = "demo", "demo"
DEMO_PASSWORD_BYTES = 12


def demo_agent(out: Path, settings: Settings, url: str) -> tuple[str, str, str] | None:
    """For ``make demo``: the newest campaign of the run (the next quarter's, else the first)
    given to team "demo", and an agent "demo" in it whose password is drawn once and kept in
    ``OUT/demo-agent.txt`` (mode 0600). Returns (name, password, campaign id), or None when the
    run made no campaign."""
    import secrets

    from nonrecours.app.application import on_log_tables
    from nonrecours.core.io import PRIVATE, write_text
    from nonrecours.serving.agents import add_agent, list_agents

    folder = next((f for f in (out / NEXT_QUARTER, out) if (f / "campaign.csv").exists()), None)
    if folder is None:
        return None
    cid, _ = assign_campaign(folder / "campaign.csv", folder, DEMO_TEAM, settings, url, quiet=True)
    stored = out / "demo-agent.txt"
    if any(a.name == DEMO_AGENT for a in on_log_tables(list_agents, url)) and stored.exists():
        return DEMO_AGENT, stored.read_text().split()[-1], cid
    password = secrets.token_urlsafe(DEMO_PASSWORD_BYTES)
    write_text(stored, f"{DEMO_AGENT} {password}\n", mode=PRIVATE)
    on_log_tables(add_agent, url, DEMO_AGENT, DEMO_TEAM, password)
    return DEMO_AGENT, password, cid


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


def _next_receipt(folder: Path, assignments: pd.DataFrame, pseudonyms: Callable[[int], list[str]]) -> pd.DataFrame:
    """Per campaign decision and benefit: seen receiving it in the next extract (NA where the
    agency does not see the benefit, or the household left the extract). ``pseudonyms`` gives a
    household's pseudonyms under every key (:meth:`DecisionLog.pseudonyms`), so a key rotated
    between the campaign and the extract still links them."""
    (households,) = read_tables(folder, HOUSEHOLDS, hint=f" (the next quarter's extract: `--next-extract`, default INPUT/{NEXT_QUARTER})")
    decision = dict(zip(assignments["household_pseudonym"], assignments["decision_id"]))
    ids = households["household_id"].map(lambda h: next((decision[p] for p in pseudonyms(int(h)) if p in decision), None))
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
    incumbents: dict
    decision: object
    version: str


def train_observed(folder: Path, campaign_id: str, log, settings: Settings, uri: str, *, next_extract: Path | None, quiet: bool, user: str = "unknown") -> ObservedTraining:
    """Fit the need and uplift models on campaign ``campaign_id``'s recorded outcomes and the
    next extract's claims, estimate the campaign's effect and the uplift ranking's value from the
    randomised arms, log it all to MLflow and register the models, promoted to @champion when
    their off-policy value is at least every incumbent ranking's (the gate). In simulation, when
    the next quarter's truth is there, the policies' true additional euros are computed and
    logged beside, never used by the gate."""
    from nonrecours.serving.decision_log import profiles_from_log
    from nonrecours.training.gate import decide_observed
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
    receipt = _next_receipt(later, assignments, log.pseudonyms)
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
    incumbents = {name: ipw_value(campaign, euros, value, capacity) for name, value in _incumbent_values(rows, profiles, assignments, settings, uri).items()}
    decision = decide_observed(off_policy, incumbents)
    simulation = _simulated_gains(later, models, settings, uri)
    run_id, version = _log_observed(rows, models, holdout, off_policy, incumbents, decision, simulation, campaign_id, settings, uri, user=user)
    return ObservedTraining(rows, models, holdout, off_policy, simulation, run_id, incumbents, decision, version)


def _incumbent_values(rows: pd.DataFrame, profiles: pd.DataFrame, assignments: pd.DataFrame, settings: Settings, uri: str) -> dict[str, pd.Series]:
    """Per campaign household, the value each ranking the challenger must beat gives it: the
    ranking that chose the campaign (its logged scores), the rules, and the outreach models'
    current @champion when there is one."""
    from nonrecours.training.baselines import rules_value

    hid = rows["household_id"].to_numpy()
    chose = assignments["model_name"].iloc[0]
    values = {f"the ranking that chose the campaign ({chose})": profiles.groupby("household_id")["expected_unclaimed_monthly"].sum(),
              "the rules": pd.Series(rules_value(rows)).groupby(hid).sum()}
    found = outreach_champion(settings, uri)
    if found is not None:
        champion = load_observed(found[0], uri)
        values[f"the current {settings.registry.outreach_model_name}@champion (version {found[1]})"] = (
            pd.Series(champion.uplift(rows) * rows["law_amount"].to_numpy(dtype=float)).groupby(hid).sum())
    return values


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


def _log_observed(rows, models, holdout, off_policy, incumbents, decision, simulation, campaign_id: str, settings: Settings, uri: str, *, user: str) -> tuple[str, str]:
    """One MLflow run with the labels' counts, the observable estimates, the models and the
    simulation's figures; the models registered with the gate's alias. Returns run id and version."""
    from nonrecours.training.registry import OUTREACH_ARTIFACTS, prepare_tracking_store, register_outreach_models

    mlflow.set_tracking_uri(prepare_tracking_store(uri))
    mlflow.set_experiment(settings.registry.experiment)
    with mlflow.start_run(run_name=f"observed labels, campaign {campaign_id}", tags={"labels": "observed", "campaign_id": campaign_id}) as run:
        mlflow.log_params({"labels": "observed", "campaign_id": campaign_id, "uplift_learner": "T-learner, LightGBM, inverse-propensity weights"})
        mlflow.log_metrics({
            "rows": len(rows), "rows_contacted": models.n_contacted, "rows_uncontacted": models.n_control,
            "holdout_effect_eur": holdout.value, "holdout_effect_low": holdout.low, "holdout_effect_high": holdout.high,
            "uplift_ipw_eur": off_policy.value, "uplift_ipw_low": off_policy.low, "uplift_ipw_se": off_policy.standard_error,
        })
        mlflow.log_dict({name: e.__dict__ for name, e in incumbents.items()}, "gate/incumbents_ipw.json")
        for name, text in models.to_strings().items():
            mlflow.log_text(text, f"{OUTREACH_ARTIFACTS}/{name}.txt")
        if simulation is not None:
            from nonrecours.training.plots import qini_figure

            for r in simulation.table.itertuples(index=False):
                name = r.policy.split(" ")[0]
                mlflow.log_metrics({f"simulation.additional_eur.{name}": r.additional_monthly, f"simulation.auuc.{name}": r.auuc})
            mlflow.log_table(simulation.table, "simulation/additional_euros.json")
            mlflow.log_figure(qini_figure(simulation.curves, simulation.capacity), "simulation/qini.png")
        version, _ = register_outreach_models(mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), settings.registry, run, alias=decision.alias,
                                              reason="; ".join(decision.reasons), user=user)
        return run.info.run_id, version


def today() -> date:
    return datetime.now(timezone.utc).date()


def round_gain(folder: Path, campaign: pd.DataFrame):
    """Simulation only: what a round's contacts caused, from ``folder``'s truth (None without it)."""
    from nonrecours.training.policies import campaign_gain, household_gain

    if not (folder / "outcomes.parquet").exists():
        return None
    (truth,) = read_tables(folder, OUTCOMES)
    return campaign_gain(campaign, household_gain(truth))
