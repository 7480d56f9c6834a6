"""``nonrecours pipeline``: every stage on the embedded defaults, in one folder (what ``make demo``
runs).

Where it sits: the command line (:mod:`nonrecours.app.cli`). It runs the commands' own steps, with
one set of settings and stores, in order: generate -> entitlements and features (each quarter) ->
train -> keys -> score -> monitoring of two more windows -> three rounds of the agency's loop -> the agents'
page of the demo.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from nonrecours.app.cli_data import step_entitlements, step_features, step_generate
from nonrecours.app.cli_models import step_monitor, step_train
from nonrecours.app.cli_outreach import step_loop, step_score
from nonrecours.app.cli_serve import step_assign, step_demo_agent, step_keys
from nonrecours.app.commands import WorkersOpt, command, console, setting
from nonrecours.app.stores import Run
from nonrecours.core.errors import NotFound
from nonrecours.data.folders import quarter_folders, write_shifted_copy
from nonrecours.serving.loop import LoopPlan
from nonrecours.serving.outreach import read_campaign_file
from nonrecours.training.registry import load_champion

DEMO_AGENT, DEMO_TEAM = "demo", "demo"
DEMO_ROUNDS, LOOP = 3, "loop"
EXAMPLE = "serving/nonrecours/serving/examples/households.json"


@command(wants=("quiet", "tracking_uri", "scheduler"))
def pipeline(
    run: Run,
    households: Annotated[int | None, setting("scenario", "households", "--households", "-n")] = None,
    seed: Annotated[int | None, setting("scenario", "seed")] = None,
    out: Annotated[Path, typer.Option(help="Folder for every output of the run.")] = Path("demo"),
    workers: WorkersOpt = None,
) -> None:
    """Run the whole pipeline on the embedded defaults, in one folder: generate (two quarters: OUT
    and OUT/next_quarter) -> entitlements -> features (both quarters) -> train (tested on the
    held-out households and on the same ones next quarter, with the promotion gate) -> score
    (worklist.csv, decision log decisions.db, secrets in secrets.env) -> monitor two more windows
    against it: a fresh draw (the next seed, in fresh/) and the same households with a third of
    them paid 30% less (shifted/), in reports/index.html -> three rounds of the agency's loop
    from the champion, in loop/ (`nonrecours loop`: a campaign of 1% of the households a round,
    the field, the next quarter, a correction learnt from every round's outcomes and the gate;
    the table printed, and in MLflow with its plot). Ends with how to open the MLflow UI and call
    the API."""
    step_generate(run, out)
    for quarter in quarter_folders(out):
        step_entitlements(run, quarter, quarter)
        step_features(quarter, quarter)
    step_train(run, out)
    secrets_file = step_keys(out / "secrets.env")
    demo = replace(run, log_url_option=f"sqlite:///{(out / 'decisions.db').resolve()}", secrets_file=secrets_file)
    try:
        load_champion(run.settings.registry, run.tracking_uri, alias=run.settings.serving.model_alias)
    except NotFound:  # a small population can leave the first model a challenger: no model to score with
        console.print(
            "[bold yellow]no worklist[/]: no "
            f"{run.settings.registry.model_name}@{run.settings.serving.model_alias} yet "
            "(the gate kept this model a challenger); promote one with `nonrecours promote`, then run "
            "`nonrecours score`"
        )
    else:
        step_score(demo, out, out / "worklist.csv")
        monitoring(demo, out)
        outreach_loop(replace(demo, quiet=True), out)
    next_steps(demo, out)
    web_page(demo, out)


def monitoring(run: Run, out: Path) -> None:
    """Two more windows monitored against ``out``: a fresh draw (the next seed, outcomes known) and
    the same households after a pay cut (outcomes unknown: the truth drawn before the cut no
    longer holds)."""
    fresh, shifted, reports = out / "fresh", out / "shifted", out / "reports"
    step_generate(replace(run.but("scenario", seed=run.settings.scenario.seed + 1, quarters=1), quiet=True), fresh)
    write_shifted_copy(fresh, shifted)
    expected = {
        fresh: "another draw of the same population: expected to pass",
        shifted: "a third of these households lost 30% of their pay: drift is expected",
    }
    for current, said in expected.items():
        console.print(f"monitoring {current} against {out} ({said})")
        step_monitor(run, str(out), str(current), reports)
    console.print(f"monitoring reports: {(reports / 'index.html').resolve()}")


def outreach_loop(run: Run, out: Path) -> None:
    """The agency's loop from the first quarter, in ``OUT/loop``: ``DEMO_ROUNDS`` rounds of
    ``training.capacity_share`` of the households (what ``nonrecours loop`` runs)."""
    k = max(1, round(run.settings.training.capacity_share * run.settings.scenario.households))
    step_loop(
        run,
        LoopPlan(out, out / LOOP, DEMO_ROUNDS, k, run.settings.scenario.seed, run.settings.loop.learners),
        resume=False,
    )


def next_steps(run: Run, out: Path) -> None:
    console.print(f"[bold green]done[/]: everything is in {out.resolve()} (worklist: {out / 'worklist.csv'})")
    console.print(f"open the MLflow UI with:  .venv/bin/mlflow ui --backend-store-uri {run.tracking_uri} --port 5000")
    tracking = f" --tracking-uri {run.tracking_uri}" if run.tracking else ""
    console.print(
        f"start the scoring API with:  .venv/bin/nonrecours serve --secrets {run.secrets_file} --decision-log "
        f"{run.log_url}" + tracking,
        soft_wrap=True,
    )
    key = f"$(grep API_KEYS {run.secrets_file} | cut -d= -f2)"
    console.print(
        f'then score the example:  curl -s -X POST localhost:3000/score -H "Authorization: Bearer {key}" '
        f"-H 'Content-Type: application/json' -d @{EXAMPLE}",
        soft_wrap=True,
    )


def web_page(run: Run, out: Path) -> None:
    """The agents' page of the demo: the newest campaign of the run (the next quarter's, else the
    first) given to team "demo", and an agent "demo" in it whose password is drawn once and kept in
    ``OUT/demo-agent.txt`` (mode 0600)."""
    rounds = sorted((out / LOOP).glob("round-*/campaign.csv"), key=lambda p: int(p.parent.name.split("-")[1]))
    folder = rounds[-1].parent if rounds else None
    if folder is None:
        console.print(
            "no campaign was made, so the agents' page has nothing to show yet (`nonrecours campaign`, then "
            "`nonrecours agents assign`)"
        )
        return
    cid, _ = step_assign(replace(run, quiet=True), read_campaign_file(folder / "campaign.csv"), folder, DEMO_TEAM)
    password, stored = step_demo_agent(run, out / "demo-agent.txt", DEMO_AGENT, DEMO_TEAM)
    console.print(
        f"agents' web page (once the API is started as above): http://localhost:3000/agents/  (campaign {cid})"
    )
    console.print(f"sign in as:  {DEMO_AGENT}  with password  {password}  (also in {stored})", soft_wrap=True)
