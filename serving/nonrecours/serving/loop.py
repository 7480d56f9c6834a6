"""``nonrecours loop``: R quarters of what an agency does, each a round: rank, design a campaign of K
contacts (holdout and exploration included), log it, play the field, read the next extract, learn,
gate, repeat.

Where it sits: over the campaign's design (:mod:`nonrecours.serving.campaign`), the decision log, the
learning (:mod:`nonrecours.training.correction`) and the gate (:func:`nonrecours.training.gate.decide_paired`).
Two sides that never mix:

- the **agency** ranks, designs, logs, learns and gates from what it holds: each round's extract
  and profiles, its campaigns (``campaign.csv``, with propensities) and the outcomes its agents
  recorded (the decision log). It is given each quarter's month; it opens no file of the simulator.
- the **field** (:class:`Field`) is the simulation: it plays a campaign's contacts from the truth's
  potential outcomes, draws the next quarter from the simulator's state, and judges a round from
  the truth (:func:`nonrecours.training.ceilings.round_figures`). Only it reads ``outcomes.parquet``,
  ``state/``, ``world.yaml`` and ``calibration.json``.

``OUT/round-N/`` is a complete quarter folder: the extract, the simulator's files, ``entitlements``
and ``profiles``, ``campaign.csv`` (the campaign played, as ``nonrecours campaign`` writes it) and,
once the round is complete, ``round.json`` (its line of the table) and ``ranking/`` (the ranking in
play after its gate). A round is complete when its next quarter is drawn, learnt from and gated:
``--resume`` carries on after the last complete one, and gives the rounds an uninterrupted run
gives (every step is deterministic from the seed; the field records each outcome once).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import NotFound, UserError
from nonrecours.core.io import read_tables, write_json
from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS
from nonrecours.serving.decision_log import DecisionLog
from nonrecours.serving.loop_agency import (
    CONTENDER_DIR,
    RULES,
    Gated,
    LoopPlan,
    Pool,
    agency_profiles,
    candidates_of,
    contender_of,
    design_campaign,
    design_of,
    gate,
    household_values,
    load_ranking,
    ranking_autoc,
    ranking_values,
    region_size,
    round_rows,
    save_ranking,
)
from nonrecours.serving.loop_field import SIMULATOR_FILES, Field, SimulatedField
from nonrecours.training.correction import Corrected, Prior, starting_point
from nonrecours.training.gate import Choice
from nonrecours.training.judge import Interval, campaign_value
from nonrecours.training.registry import load_champion

__all__ = [
    "LOOP_FILE",
    "ROUND_COLUMNS",
    "ROUND_FILE",
    "SIMULATOR_FILES",
    "LoopPlan",
    "SimulatedField",
    "run_loop",
    "tracked_loop",
]

LOOP_FILE = "loop.json"
ROUND_FILE = "round.json"


@dataclass
class LoopResult:
    table: pd.DataFrame
    started_from: str


def check_out(plan: LoopPlan, *, resume: bool) -> list[int]:
    """The rounds already complete in ``OUT`` (none for a new loop); refuses an ``OUT`` that holds
    another loop (unless ``resume``, and then only the same one) or anything else."""
    marker = plan.out / LOOP_FILE
    if not marker.exists():
        if plan.out.exists() and any(plan.out.iterdir()):
            raise UserError(f"--out {plan.out}: not empty and holds no loop; give an empty or new folder")
        return []
    if not resume:
        raise UserError(
            f"--out {plan.out} holds another loop ({LOOP_FILE}); continue it with --resume, or give another --out"
        )
    theirs = json.loads(marker.read_text())["identity"]
    mine = plan.identity()
    differ = [f"{k}: {theirs.get(k)!r} there, {v!r} here" for k, v in mine.items() if theirs.get(k) != v]
    if differ:
        raise UserError(f"--resume: {plan.out} holds a loop with other settings ({'; '.join(differ)})")
    done: list[int] = []
    while (plan.folder(len(done) + 1) / ROUND_FILE).exists():
        done.append(len(done) + 1)
    return done


def start(plan: LoopPlan, settings: Settings, uri: str) -> tuple[Prior, str]:
    """The prior: the registry's champion, or the rules when none is registered (said)."""
    try:
        champion = load_champion(settings.registry, uri)
    except NotFound:
        champion = None
    if champion is None:
        return Prior(RULES), (
            f"no {settings.registry.model_name}@champion registered: the loop starts from the rules (eligible on the "
            "agency's data, not seen receiving, by amount)"
        )
    name = f"champion v{champion.version}"
    return Prior(
        name, champion.scorer
    ), f"the loop starts from {settings.registry.model_name}@champion (version {champion.version})"


def copy_first_quarter(plan: LoopPlan) -> None:
    """``OUT/round-1``: the quarter of ``--input`` (its extract and the simulator's files)."""
    first = plan.folder(1)
    if (first / f"{HOUSEHOLDS.name}.parquet").exists():
        return
    tmp = first.with_name(first.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (f"{INDIVIDUALS.name}.parquet", f"{HOUSEHOLDS.name}.parquet", *SIMULATOR_FILES):
        src = plan.input / name
        if src.is_dir():
            shutil.copytree(src, tmp / name)
        elif src.exists():
            shutil.copy2(src, tmp / name)
    tmp.rename(first)


ROUND_COLUMNS = (
    "round",
    "month",
    "ranking played",
    "paired with",
    "contacts",
    "rights opened",
    "EUR/month recorded",
    "estimated EUR/month caused",
    "low",
    "high",
    "gate",
    "AUTOC",
    "AUTOC se",
)


def round_line(
    n: int,
    month: str,
    played: tuple[Corrected, Corrected | None],
    campaign: pd.DataFrame,
    records: pd.DataFrame,
    value: Interval,
    choice: Choice,
) -> dict:
    opened = records["result"] == "opened"
    model, contender = played
    return {
        "round": n,
        "month": month,
        "ranking played": model.name,
        "paired with": "-" if contender is None else contender.name,
        "contacts": int(campaign["contacted"].sum()),
        "rights opened": int(opened.sum()),
        "EUR/month recorded": round(float(records.loc[opened, "amount_granted"].sum()), 2),
        "estimated EUR/month caused": round(value.value, 2),
        "low": round(value.low, 2),
        "high": round(value.high, 2),
        "gate": "switched to " + choice.ranking if choice.switched else "kept",
    }


def play_round(
    n: int,
    plan: LoopPlan,
    played: tuple[Corrected, Corrected | None],
    prior: Prior,
    pool: Pool,
    settings: Settings,
    log: DecisionLog,
    fld: Field,
    *,
    scheduler: str | None,
    quiet: bool,
) -> tuple[dict, Corrected, Gated]:
    """Round ``n``: rank by the ranking in play (paired with the last gate's contender, if any),
    design and log the campaign, play the field, draw the next quarter, learn from every round's
    labels and gate. Returns the round's line, the ranking in play next and the gate's figures
    (with the next round's contender)."""
    folder = plan.folder(n)
    month = fld.month(folder)
    profiles = pool.profiles[n]
    model, contender = played
    campaign = design_campaign(profiles, model, plan, n, month, settings, log, contender)
    records = fld.play(folder, campaign, log)
    contacted = campaign.loc[campaign["contacted"], "household_id"].to_numpy()
    following = plan.folder(n + 1)
    if not (following / f"{HOUSEHOLDS.name}.parquet").exists():
        partial = following.with_name(following.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        fld.draw_next(folder, partial, contacted)
        partial.rename(following)
    pool.rows[n] = round_rows(plan, n, log, profiles)
    rows = pool.pooled()
    candidates = candidates_of(rows, prior, plan.learners, plan.seed)
    gains, choice, units = gate(
        model,
        candidates,
        rows,
        pool.universe,
        plan.capacity,
        plan.seed,
        alpha=settings.loop.gate_alpha,
        region=region_size(design_of(plan, settings, n)),
    )
    this = units[units["round"] == n]  # what this round's contacts caused, on its own randomised arms
    value = campaign_value(this["score"].to_numpy(), this["propensity"].to_numpy(), seed=plan.seed)
    chosen = candidates[choice.ranking] if choice.switched else model
    line = round_line(n, month, played, campaign, records, value, choice)
    rate = ranking_autoc(model, units, pool.universe, plan.seed)  # of the ranking played, on every round's units
    line.update({"AUTOC": round(rate.value, 2), "AUTOC se": round(rate.standard_error, 2)})
    region = region_size(design_of(plan, settings, n))
    rankings = {
        "rules alone": household_values(starting_point(Prior(RULES), plan.seed), pool.prepared[n]),
        "prior alone": household_values(starting_point(prior, plan.seed), pool.prepared[n]),
        # what the last round's challengers, kept or not, would have caused in this one
        **{f"candidate {name}": ranking_values(c, pool.prepared[n], region) for name, c in pool.tried.items()},
    }
    figures = fld.judge(folder, profiles, contacted, rankings, plan.capacity)
    if figures is not None:
        line.update({f"true {k}": v for k, v in figures.items()})
    pool.tried = {name: c for name, c in candidates.items() if name in plan.learners}
    paired = contender_of(candidates, gains, choice) if settings.loop.pair_contender else None
    return line, chosen, Gated(candidates, gains, choice, paired)


def run_loop(
    plan: LoopPlan,
    settings: Settings,
    uri: str,
    log: DecisionLog,
    fld: Field,
    *,
    resume: bool = False,
    scheduler: str | None = None,
    quiet: bool = True,
    say: Callable[[str], None] = lambda _: None,
    tracked: Callable[[int, dict, Gated, Corrected], None] | None = None,
) -> LoopResult:
    """Play ``plan.rounds`` rounds (see the module's docstring); each complete round's line is in
    ``round-N/round.json``, and the table of every round is returned."""
    if plan.rounds < 1:
        raise UserError(f"--rounds {plan.rounds}: at least one round")
    done = check_out(plan, resume=resume)
    prior, started = start(plan, settings, uri)
    say(started)
    (households,) = read_tables(plan.input, HOUSEHOLDS)
    if plan.capacity > len(households):
        raise UserError(f"--capacity {plan.capacity:,} is more than the {len(households):,} households of {plan.input}")
    marker = plan.out / LOOP_FILE
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded["prior"] != prior.name:
            raise UserError(
                f"--resume: the loop in {plan.out} started from {recorded['prior']}, the registry now has {prior.name}"
            )
    else:
        plan.out.mkdir(parents=True, exist_ok=True)
        write_json({"identity": plan.identity(), "prior": prior.name, "started": started}, marker)
    copy_first_quarter(plan)
    model = load_ranking(plan.folder(done[-1]), prior, plan.seed) if done else starting_point(prior, plan.seed)
    contender = None
    if done and (plan.folder(done[-1]) / CONTENDER_DIR).exists():
        contender = load_ranking(plan.folder(done[-1]), prior, plan.seed, CONTENDER_DIR)
    pool = Pool(prior, plan.capacity)
    lines = []
    for n in range(1, plan.rounds + 1):
        pool.add(
            n, agency_profiles(plan.folder(n), settings, fld.month(plan.folder(n)), scheduler=scheduler, quiet=quiet)
        )
        if n in done:
            pool.rows[n] = round_rows(plan, n, log, pool.profiles[n])
            lines.append(json.loads((plan.folder(n) / ROUND_FILE).read_text()))
            say(f"round {n}: complete (resumed after it)")
            if n == done[-1]:  # its challengers, learnt again (deterministic), for the next round's figures
                learnt = candidates_of(pool.pooled(), prior, plan.learners, plan.seed)
                pool.tried = {name: c for name, c in learnt.items() if name in plan.learners}
            continue
        paired = "" if contender is None else f", paired with {contender.name} where they disagree"
        say(f"round {n}: ranking by {model.name}{paired}")
        line, chosen, gated = play_round(
            n, plan, (model, contender), prior, pool, settings, log, fld, scheduler=scheduler, quiet=quiet
        )
        save_ranking(chosen, plan.folder(n))
        if gated.contender is not None:
            save_ranking(gated.contender, plan.folder(n), CONTENDER_DIR)
        if tracked is not None:
            tracked(n, line, gated, chosen)
        write_json(line, plan.folder(n) / ROUND_FILE)
        lines.append(line)
        say(f"round {n}: {line['contacts']:,} contacts, {line['rights opened']:,} rights opened; gate: {line['gate']}")
        model, contender = chosen, gated.contender
    return LoopResult(pd.DataFrame(lines), started)


def tracked_loop(
    plan: LoopPlan, settings: Settings, uri: str, log: DecisionLog, fld: Field, *, resume: bool, **kw
) -> tuple[LoopResult, str]:
    """:func:`run_loop` with its MLflow runs (:mod:`nonrecours.training.loop_tracking`): the loop's run
    (kept in ``loop.json``, so a resumed loop logs into the same one) and one run per round.
    Returns the result and the loop's run id."""
    from nonrecours.training.loop_tracking import log_round, log_table, loop_run

    marker = plan.out / LOOP_FILE
    known = json.loads(marker.read_text()).get("mlflow_run") if resume and marker.exists() else None
    parent: list[str] = []

    def tracked(n: int, line: dict, gated: Gated, chosen: Corrected) -> None:
        if not parent:
            recorded = json.loads(marker.read_text())
            run = loop_run(
                settings, uri, name=f"outreach loop from {plan.input.name}", run_id=known, tags={"seed": str(plan.seed)}
            )
            write_json({**recorded, "mlflow_run": run}, marker)
            parent.append(run)
        log_round(uri, parent[0], n, line, gated, chosen)
        done = [
            json.loads((plan.folder(i) / ROUND_FILE).read_text())
            for i in range(1, n)
            if (plan.folder(i) / ROUND_FILE).exists()
        ]
        log_table(uri, parent[0], pd.DataFrame([*done, line]), finished=n == plan.rounds)

    result = run_loop(plan, settings, uri, log, fld, resume=resume, tracked=tracked, **kw)
    if not parent:
        parent.append(known or "")
    return result, parent[0]
