"""``nonrecours pipeline``: every stage on the embedded defaults, in one folder (what ``make demo``
runs).

Where it sits: the command line (:mod:`nonrecours.app.cli`). It runs the commands' own steps, with
one set of settings and stores, in order: generate -> entitlements and features (each quarter) ->
train -> keys -> score -> monitoring of two more windows -> two rounds of outreach -> the agents'
page of the demo.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from nonrecours.app.cli_data import step_entitlements, step_features, step_generate
from nonrecours.app.cli_models import step_monitor, step_train
from nonrecours.app.cli_outreach import step_campaign, step_score, today
from nonrecours.app.cli_serve import step_assign, step_demo_agent, step_keys
from nonrecours.app.commands import WorkersOpt, command, console, setting
from nonrecours.app.stores import Run
from nonrecours.core.errors import NotFound, UserError
from nonrecours.data.folders import NEXT_QUARTER, quarter_folders, write_shifted_copy
from nonrecours.serving.outreach import campaign_labels, play_field, read_campaign_file
from nonrecours.training.outreach import round_gain, train_observed
from nonrecours.training.registry import load_champion

DEMO_AGENT, DEMO_TEAM = "demo", "demo"
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
    them paid 30% less (shifted/), in reports/index.html -> two rounds of outreach: a campaign
    from the champion (campaign.csv), the field played, a retrain on observed labels only, a
    campaign on the next quarter ranked by its uplift model, the field; each round's additional
    euros printed. Ends with how to open the MLflow UI and call the API."""
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
        rounds(replace(demo, quiet=True), out)
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


def rounds(run: Run, out: Path) -> None:
    """Two rounds of outreach: a campaign from the champion, the field, a retrain on observed
    labels only, then a campaign ranked by its uplift model on the next quarter, and the field."""
    run_id = None
    for i, (folder, ranking) in enumerate(((out, "champion"), (out / NEXT_QUARTER, "uplift")), start=1):
        if not (folder / "households.parquet").exists():
            break
        model_run = run_id if ranking == "uplift" else None
        campaign = step_campaign(
            run.but("campaign", ranking=ranking),
            folder,
            folder / "campaign.csv",
            seed=run.settings.scenario.seed + i,
            model_run=model_run,
        ).table
        play_field(folder, campaign, run.log, outcome_date=today())
        gain = round_gain(folder, campaign)
        said = f"round {i} ({ranking}): {int(campaign['contacted'].sum()):,} contacts"
        if gain is not None:
            said += (
                f" caused {gain.value:,.0f} EUR a month of claims (simulation, 90% interval "
                f"{gain.low:,.0f} to {gain.high:,.0f})"
            )
        if i > 1:
            console.print(
                said + "; the agency's holdout estimate needs the following quarter's extract", soft_wrap=True
            )
            break
        run_id = learned(run, folder, str(campaign["campaign_id"].iloc[0]), said)
        if run_id is None:
            break


def learned(run: Run, folder: Path, campaign_id: str, said: str) -> str | None:
    """The retrain on a round's observed labels, said after the round's line; its run id, or None
    when the campaign gave too few labels to learn from (a small population's may)."""
    try:
        labels = campaign_labels(run.log, campaign_id, folder / NEXT_QUARTER)
        result = train_observed(
            labels, run.settings, run.tracking_uri, next_folder=folder / NEXT_QUARTER, user=run.env.user
        )
    except UserError as exc:
        console.print(f"{said}; no retrain on observed labels: {exc}", soft_wrap=True)
        return None
    h, name = result.holdout, run.settings.registry.outreach_model_name
    console.print(
        f"{said}; the agency's holdout estimate: {h.value:+,.2f} EUR a month per contact (90% interval "
        f"{h.low:+,.2f} to {h.high:+,.2f}); retrained on observed labels: run {result.run_id}, {name} "
        f"version {result.version} {result.decision.alias} by the gate",
        soft_wrap=True,
    )
    return result.run_id


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
    folder = next((f for f in (out / NEXT_QUARTER, out) if (f / "campaign.csv").exists()), None)
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
