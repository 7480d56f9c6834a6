"""Shared test helpers: tiny households built in-line, and one small generated population."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from data.calibration import load_calibration
from nonrecours.config import LawConfig

_ids = itertools.count(1)

LAW = LawConfig(reference_month="2025-06", workers=1)


def person(**overrides) -> dict:
    """One member of a situation (law-engine input), an inactive adult of 40 with no income."""
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
    }
    row.update(overrides)
    return row


def make_household(*members: dict, tenure: str = "private_renter", rent: float = 500.0, depcom: str = "69123") -> tuple[pd.DataFrame, pd.DataFrame]:
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
def small_population(tmp_path_factory):
    """1,500 households generated once through the CLI, with entitlements, in one folder."""
    from typer.testing import CliRunner

    from nonrecours.cli import app

    folder = tmp_path_factory.mktemp("population")
    runner = CliRunner()
    result = runner.invoke(app, ["pipeline", "-n", "1500", "--seed", "7", "--out", str(folder), "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return folder
