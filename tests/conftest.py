"""Shared test helpers: tiny households built in-line, and one small generated population."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from nonrecours.core.config import LawConfig
from nonrecours.data.calibration import load_calibration

_ids = itertools.count(1)

LAW = LawConfig(reference_month="2025-06", workers=1)


def person(**overrides) -> dict:
    """One member of a situation (law-engine input), an inactive adult of 40 with no income. The
    pay of year N-2 is the earlier pay unless given."""
    row = {
        "benefit_unit": 0,
        "role": "head",
        "age": 40,
        "activity": "inactive",
        "pay_recent": 0.0,
        "pay_earlier": 0.0,
        "unemployment_recent": 0.0,
        "unemployment_earlier": 0.0,
        "pension_monthly": 0.0,
        "disability_rate": 0.0,
        "turnover": 0.0,
        "turnover_n2": 0.0,
    }
    row.update(overrides)
    row.setdefault("pay_n2", row["pay_earlier"])
    return row


def make_household(
    *members: dict, tenure: str = "private_renter", rent: float = 500.0, depcom: str = "69123"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A situation with one household: ``members`` default to a single adult (``person()``)."""
    hid = next(_ids)
    members = members or (person(),)
    persons = pd.DataFrame([{**m, "household_id": hid, "person_id": hid * 100 + i} for i, m in enumerate(members)])
    households = pd.DataFrame([{"household_id": hid, "tenure": tenure, "rent_monthly": rent, "depcom": depcom}])
    return persons, households


def combine(*situations) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.concat([p for p, _ in situations], ignore_index=True),
        pd.concat([h for _, h in situations], ignore_index=True),
    )


def amounts(entitlements: pd.DataFrame) -> pd.DataFrame:
    """Entitlements as one row per household, one column per benefit."""
    return entitlements.pivot(index="household_id", columns="benefit", values="monthly_amount")


@pytest.fixture(scope="session")
def calibration():
    return load_calibration()


@pytest.fixture(scope="session")
def tracking_store(tmp_path_factory):
    """A fresh SQLite MLflow tracking store (with its promotion log beside it) for the session."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def small_population(tmp_path_factory, tracking_store):
    """1,500 households run once through the whole CLI pipeline (generate -> entitlements ->
    features -> train), in one folder, tracked in the session's temporary store. The outreach
    capacity is 5% of households, not the default 1%: on 300 test households 1% is three rows,
    too few for the gate's "at k" comparison to mean anything."""
    from typer.testing import CliRunner

    from nonrecours.app.cli import app

    folder = tmp_path_factory.mktemp("population")
    config = folder.parent / "small_population.yaml"
    config.write_text("training:\n  capacity_share: 0.05\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "pipeline",
            "-n",
            "1500",
            "--seed",
            "7",
            "--out",
            str(folder),
            "--quiet",
            "--workers",
            "1",
            "--tracking-uri",
            tracking_store,
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="session")
def tables(small_population):
    from nonrecours.core.io import read_table
    from nonrecours.core.schema import (
        ENTITLEMENTS,
        HOUSEHOLDS,
        INDIVIDUALS,
        OUTCOMES,
        PROFILES,
    )

    return {
        t.name: read_table(small_population, t) for t in (INDIVIDUALS, HOUSEHOLDS, OUTCOMES, ENTITLEMENTS, PROFILES)
    }


@pytest.fixture(scope="session")
def evaluation(tables):
    """The model and its baselines trained in memory on the small population."""
    from nonrecours.core.config import TrainingConfig
    from nonrecours.training.evaluate import train_and_evaluate

    return train_and_evaluate(
        tables["profiles"], tables["outcomes"], TrainingConfig(capacity_share=0.05), min_group_positives=30
    )


def observed_person(**overrides) -> dict:
    """One row of individuals.parquet: an inactive French adult of 40, no income."""
    row = {
        "benefit_unit": 0,
        "role": "head",
        "age": 40,
        "sex": "F",
        "activity": "inactive",
        "declared_pay_last_year": 0.0,
        "declared_pay_n2": None,
        "known_pay_monthly": 0.0,
        "known_turnover_monthly": 0.0,
        "pension_monthly": 0.0,
        "unemployment_benefit_monthly": 0.0,
        "disability_rate": 0.0,
        "nationality_group": "french",
        "higher_education": False,
    }
    row.update(overrides)
    return row


def make_observed(*members: dict, **household) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observed tables for one household (the agency's view), validated against the schema."""
    from nonrecours.core.schema import BENEFITS, HOUSEHOLDS, INDIVIDUALS, validate

    hid = next(_ids)
    members = members or (observed_person(),)
    ind = pd.DataFrame([{**m, "household_id": hid, "person_id": hid * 100 + i} for i, m in enumerate(members)])
    row = {
        "household_id": hid,
        "household_type": "single_person",
        "n_persons": len(members),
        "tenure": "private_renter",
        "rent_monthly": 500.0,
        "depcom": "69123",
        "territory_type": "large_urban",
        "digital_exclusion": False,
        "contacts_last_year": 1,
        "reported_event": "none",
        **{f"receives_{b}": (False if b in ("rsa", "ppa", "aide_logement", "af", "aah") else pd.NA) for b in BENEFITS},
    }
    row.update(household)
    return validate(ind, INDIVIDUALS), validate(pd.DataFrame([row]), HOUSEHOLDS)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server: ``NONRECOURS_TEST_POSTGRES_URL`` if set, else a throwaway cluster
    started here from Debian's ``postgresql`` binaries (``.ci/run`` installs them). Skipped, with
    the reason, only where neither is possible."""
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    if os.environ.get("NONRECOURS_TEST_POSTGRES_URL"):
        yield os.environ["NONRECOURS_TEST_POSTGRES_URL"]
        return
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    skip = pytest.fail if os.environ.get("NONRECOURS_REQUIRE_POSTGRES") else pytest.skip
    if not binaries:
        skip(
            "PostgreSQL is not installed (`apt-get install postgresql`; .ci/run does it) and "
            "NONRECOURS_TEST_POSTGRES_URL is not set"
        )
    bin_dir = binaries[-1]
    folder = tempfile.mkdtemp(prefix="nonrecours-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(folder, "data")
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "nonrecours")
        run(
            f"{bin_dir}/pg_ctl",
            "-D",
            data,
            "-l",
            os.path.join(folder, "log"),
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
            "start",
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        skip(f"could not start PostgreSQL from {bin_dir}: {getattr(exc, 'stderr', exc)}")
    try:
        yield f"postgresql+psycopg://nonrecours@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


PASSWORD = "un mot de passe assez long"
"""Every test agent's password."""


def assigned_campaign(population, tracking_store: str, folder) -> dict:
    """A campaign on ``population`` in a new decision log in ``folder`` (ranked by the rules, 120
    contacts, 20% holdout), given to team "nord" with ``nonrecours agents assign``; agents alice and
    carol in "nord", bob in "sud" (password :data:`PASSWORD`)."""
    import pandas as pd
    from typer.testing import CliRunner

    from nonrecours.app.cli import app
    from nonrecours.serving.agents import add_agent
    from nonrecours.serving.decision_log import DecisionLog
    from nonrecours.serving.secrets import resolve

    runner = CliRunner()
    url = f"sqlite:///{folder / 'decisions.db'}"
    common = ["--decision-log", url, "--secrets", str(population / "secrets.env")]
    made = runner.invoke(
        app,
        [
            "campaign",
            "--input",
            str(population),
            "--capacity",
            "120",
            "--holdout",
            "0.2",
            "--exploration",
            "0.1",
            "--seed",
            "5",
            "--ranking",
            "rules",
            "--out",
            str(folder / "campaign.csv"),
            "--tracking-uri",
            tracking_store,
            "--workers",
            "1",
            "-q",
            *common,
        ],
    )
    assert made.exit_code == 0, made.output
    assigned = runner.invoke(
        app,
        [
            "agents",
            "assign",
            str(folder / "campaign.csv"),
            "--team",
            "nord",
            "--input",
            str(population),
            "--decision-log",
            url,
            "-q",
        ],
    )
    assert assigned.exit_code == 0, assigned.output
    log = DecisionLog.open(url, resolve(population / "secrets.env", {}))
    agents = {
        name: add_agent(log.engine, name, team, PASSWORD)
        for name, team in (("alice", "nord"), ("bob", "sud"), ("carol", "nord"))
    }
    return {"log": log, "url": url, "campaign": pd.read_csv(folder / "campaign.csv"), "folder": folder, **agents}
