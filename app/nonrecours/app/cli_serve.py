"""The commands of the service and its stores: ``serve``, ``keys``, ``purge``, ``grant-roles`` and the
agents' accounts and caseloads (``agents add|list|assign|unassign``).

Where it sits: the command line (:mod:`nonrecours.app.cli`).
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from nonrecours.app import environment as envvars
from nonrecours.app.cli_outreach import today
from nonrecours.app.commands import agents_app, app, command, console, fail, run_or_exit
from nonrecours.app.stores import Run
from nonrecours.core.config import without_password
from nonrecours.core.io import PRIVATE, write_text
from nonrecours.serving.agents import add_agent, list_agents
from nonrecours.serving.caseload import assign, assignment, create_tables, unassign
from nonrecours.serving.decision_log import connect
from nonrecours.serving.decision_log import grant_roles as grant
from nonrecours.serving.decision_log import purge as purge_log
from nonrecours.serving.outreach import read_campaign_file
from nonrecours.serving.secrets import api_keys, new_secrets_file, pseudonym_key, rotate_pseudonym_key
from nonrecours.training.registry import mlflow_limits

STORES = ("tracking_uri", "decision_log", "secrets")
LOG = ("decision_log",)
DEMO_PASSWORD_BYTES = 12


@command(wants=STORES)
def serve(
    run: Run,
    port: Annotated[int, typer.Option(help="Port of the HTTP API.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
) -> None:
    """Start the scoring API (BentoML) with the champion model.

    POST /score and POST /outcomes need 'Authorization: Bearer <key>' (NONRECOURS_API_KEYS);
    /healthz, /livez, /readyz, /metrics and /docs.json are open. With no champion yet, the
    service starts, logs why it is not ready and answers 503 on /readyz until one is trained.
    Once ready, it checks every serving.champion_refresh_seconds (60) whether the champion alias
    moved and swaps the new version in without a restart. Workers, request limits and batching
    come from the settings (--config). Example request: serving/nonrecours/serving/examples/households.json.
    """
    args, env = serve_command(run, port=port, host=host)
    where = f"decision log: {without_password(run.log_url)}, registry: {without_password(run.tracking_uri)}"
    console.print(f"scoring API on http://{host}:{port} ({where})")
    os.execvpe(args[0], args, env)


def serve_command(run: Run, *, port: int, host: str) -> tuple[list[str], dict[str, str]]:
    """What ``nonrecours serve`` runs: ``bentoml serve`` on :mod:`nonrecours.app.bento`, with the
    settings file, secrets file, tracking store and decision log in its environment. The secrets
    are checked and the decision log's tables created here, once, before the workers start
    (several workers creating them at once on a new database would race); a wrong URL fails now."""
    values = run.secrets()
    try:
        pseudonym_key(values)
        api_keys(values)
    except ValueError as exc:
        fail(str(exc))
    try:  # the log's tables and the agents' page's, before the workers start
        engine = connect(run.log_url, timeout_seconds=run.settings.serving.decision_log_timeout_seconds)
        create_tables(engine)
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to open the log stops the start, with the reason
        fail(
            f"decision log {without_password(run.log_url)!r}: cannot open it ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); "
            "expected a SQLAlchemy URL such as sqlite:///decisions.db or postgresql+psycopg://user@host/nonrecours"
        )
    child = dict(run.env.values)
    child[envvars.TRACKING_URI], child[envvars.DECISION_LOG] = run.tracking_uri, run.log_url
    child.update(mlflow_limits(run.settings.registry))  # no unpickling (no MLflow loader runs in the service anyway)
    if run.secrets_file is not None:
        child[envvars.SECRETS_FILE] = str(run.secrets_file.resolve())
    if run.config is not None:
        child[envvars.CONFIG] = str(run.config.resolve())
    args = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "nonrecours.app.bento:Scoring",
        "--port",
        str(port),
        "--host",
        host,
    ]
    return args, child


@app.command()
def keys(
    out: Annotated[
        Path,
        typer.Option(help="Secrets file to create (mode 600). An existing file is left untouched unless --rotate."),
    ] = Path("secrets.env"),
    rotate: Annotated[
        bool,
        typer.Option(
            help="Give the existing file a new pseudonymisation key; the old one moves to "
            "NONRECOURS_PSEUDONYM_KEYS_RETIRED, so outcomes still find the decisions made under it. Restart "
            "the service afterwards.",
        ),
    ] = False,
) -> None:
    """Create a secrets file with a fresh pseudonymisation key and API key, for `score` and `serve`
    (--secrets FILE), or rotate its pseudonymisation key (--rotate). Keep every key: without the
    one a row was made with (current or retired), outcomes no longer link to earlier scores."""
    run_or_exit(lambda: step_keys(out, rotate=rotate))


def step_keys(out: Path, *, rotate: bool = False) -> Path:
    if rotate:
        if not out.exists():
            fail(f"--rotate: no secrets file {out} to rotate (create one with `nonrecours keys --out {out}`)")
        rotate_pseudonym_key(out)
        console.print(f"rotated the pseudonymisation key in {out}; the previous one is kept as retired")
    else:
        console.print(f"{'wrote' if new_secrets_file(out) else 'kept the existing'} {out}")
    typer.echo(str(out))
    return out


@command(wants=LOG)
def purge(
    run: Run,
    before: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Remove decisions scored before this date (default: today minus serving.decision_log_retention_days).",
        ),
    ] = None,
) -> None:
    """Apply the retention period: delete the decisions scored before --before with their outcomes,
    campaign assignments and audit attributes, in one transaction, and record the purge (time,
    cut-off, counts, operating-system user) in the log's `purges` table, which is never purged. On
    PostgreSQL the append-only triggers let only this through. Needs no secret."""
    cut = before.date() if before else today() - timedelta(days=run.settings.serving.decision_log_retention_days)
    receipt = run.on_tables(purge_log, datetime(cut.year, cut.month, cut.day), by=run.env.user)
    console.print(
        f"purged {receipt.decisions:,} decision(s), {receipt.outcomes:,} outcome(s) and "
        f"{receipt.assignments:,} campaign "
        f"assignment(s) scored before {cut}; recorded in `purges` of {without_password(run.log_url)}"
    )


@command(name="grant-roles", wants=LOG)
def grant_roles(
    run: Run,
    service_role: Annotated[str, typer.Option(help="PostgreSQL role the API and batch scoring connect as.")],
    monitoring_role: Annotated[str, typer.Option(help="PostgreSQL role `nonrecours monitor` and auditors connect as.")],
) -> None:
    """PostgreSQL, once, as the tables' owner: let the service's role read and append the log and
    append audit attributes it can never read back, and the monitoring role read everything;
    revoke the rest from PUBLIC. Neither role can update or delete a row."""
    run.on_tables(create_tables)  # the agents' page's tables, so that the grants cover them
    run.on_tables(grant, service=service_role, monitoring=monitoring_role)
    console.print(
        f"granted: {service_role} scores and records outcomes, {monitoring_role} reads the audit attributes "
        f"({without_password(run.log_url)})"
    )


@command(agents_app, "add", wants=LOG)
def agents_add(
    run: Run,
    name: Annotated[str, typer.Argument(help="The agent's sign-in name (unique).")],
    team: Annotated[str, typer.Option(help="The agent's team: they see the campaigns assigned to it.")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the password from this file's first line (for scripts); default: asked twice, not echoed.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Create an agent's account in the decision log's database. The password (12 characters or
    more) is stored as an Argon2id hash, never in clear, and never printed."""
    if password_file:
        password = password_file.read_text().splitlines()[0]
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    agent = run.on_tables(add_agent, name, team, password)
    console.print(f"agent {agent.name!r} (id {agent.id}) added to team {agent.team!r}")


@command(agents_app, "list", wants=LOG)
def agents_list(run: Run) -> None:
    """The agents' accounts: id, name, team (never a password or its hash)."""
    for agent in run.on_tables(list_agents):
        typer.echo(f"{agent.id}\t{agent.name}\t{agent.team}")


@command(agents_app, "assign", wants=("quiet", *LOG))
def agents_assign(
    run: Run,
    campaign_file: Annotated[
        Path,
        typer.Argument(
            help="The campaign file `nonrecours campaign` wrote (.csv or .parquet).", exists=True, dir_okay=False
        ),
    ],
    team: Annotated[str, typer.Option(help="The team whose agents will see the campaign's contacted households.")],
    input: Annotated[
        Path,
        typer.Option(
            help="The extract the campaign was made from (its folder): the households' "
            "territory and the law engine's inputs.",
            exists=True,
            file_okay=False,
        ),
    ] = Path("demo"),
) -> None:
    """Give a campaign to a team: its contacted households (never the holdout) appear on the team's
    agents' caseload page, ranked as the campaign ranked them, each benefit with its legal basis
    computed now by OpenFisca-France on the extract."""
    cid, added = step_assign(run, read_campaign_file(campaign_file), input, team)
    console.print(f"campaign {cid}: {added:,} households to contact assigned to team {team!r}")


def step_assign(run: Run, campaign: pd.DataFrame, folder: Path, team: str) -> tuple[str, int]:
    """A campaign's contacted households on a team's caseload; its id and how many."""
    return str(campaign["campaign_id"].iloc[0]), run.on_tables(
        assign, campaign, team, **assignment(campaign, folder, run.settings, quiet=run.quiet)
    )


@command(agents_app, "unassign", wants=LOG)
def agents_unassign(
    run: Run,
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id (in its file's campaign_id column).")],
    team: Annotated[str, typer.Option(help="The team to take it from.")],
) -> None:
    """Take a campaign off a team's caseload when its outreach is over (the outcomes recorded stay
    in the decision log)."""
    removed = run.on_tables(unassign, campaign_id, team)
    console.print(f"campaign {campaign_id}: {removed:,} households taken off team {team!r}'s caseload")


def step_demo_agent(run: Run, stored: Path, name: str, team: str) -> tuple[str, Path]:
    """An agent ``name`` in ``team`` whose password is drawn once and kept in ``stored`` (mode 0600)."""
    if any(a.name == name for a in run.on_tables(list_agents)) and stored.exists():
        return stored.read_text().split()[-1], stored
    password = secrets.token_urlsafe(DEMO_PASSWORD_BYTES)
    write_text(stored, f"{name} {password}\n", mode=PRIVATE)
    run.on_tables(add_agent, name, team, password)
    return password, stored
