"""A world that moves quarter by quarter: a quarter's folder holds the simulator's state, and the
next quarter drawn from it is the generator's own next quarter, with the claims an agent's
contacts caused, the same households (less those who left, plus newcomers) and their own draws."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from nonrecours.core.config import LawConfig, ScenarioConfig, Settings
from nonrecours.core.io import read_table
from nonrecours.core.schema import HOUSEHOLDS, OUTCOMES, WORLD_PERSONS, WORLD_TRAITS
from nonrecours.data.folders import (
    NEXT_QUARTER,
    STATE,
    WORLD,
    next_quarter,
    quarter_folder,
    read_state,
    write_population,
)
from nonrecours.data.generate import QUARTERS_PER_YEAR

SETTINGS = Settings(scenario=ScenarioConfig(households=300, seed=8, quarters=5), law=LawConfig(workers=1))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "pop"
    write_population(SETTINGS, out, scheduler=None, quiet=True)
    return out


def tables(folder):
    return {t.name: read_table(folder, t) for t in (HOUSEHOLDS, OUTCOMES)} | {
        t.name: read_table(folder / STATE, t) for t in (WORLD_PERSONS, WORLD_TRAITS)
    }


def test_the_next_quarter_drawn_from_a_folder_is_the_generator_s_own(world, tmp_path):
    first = next_quarter(world, tmp_path / "q1", SETTINGS, quiet=True)[0]
    next_quarter(tmp_path / "q1", tmp_path / "q2", SETTINGS, quiet=True)
    for got, want in ((tmp_path / "q1", quarter_folder(world, 1)), (tmp_path / "q2", quarter_folder(world, 2))):
        for name, frame in tables(got).items():
            assert frame.equals(tables(want)[name]), (got, name)
    assert first.reference_month == "2025-09"
    assert yaml.safe_load((tmp_path / "q1" / WORLD).read_text()) == yaml.safe_load((world / WORLD).read_text())


def test_a_contact_s_claims_show_in_the_next_extract_and_nothing_else_changes(world, tmp_path):
    truth = read_table(world, OUTCOMES)
    caused = truth[truth["claim_if_contacted"] & ~truth["claim_if_not_contacted"]]
    contacted = caused["household_id"].unique()
    assert len(contacted) >= 5
    next_quarter(world, tmp_path / "with", SETTINGS, contacted=contacted, quiet=True)
    next_quarter(world, tmp_path / "without", SETTINGS, quiet=True)
    key = ["household_id", "benefit"]
    with_, without = (read_table(tmp_path / f, OUTCOMES).set_index(key) for f in ("with", "without"))
    pairs = caused.set_index(key).index.intersection(with_.index)
    assert with_.loc[pairs, "claimed"].mean() > 0.6 > without.loc[pairs, "claimed"].mean()
    others = with_.index.difference(pairs)
    assert (with_.loc[others, "status"] == without.loc[others, "status"]).mean() > 0.99  # the contacts' claims only
    paid = with_.loc[pairs][with_.loc[pairs, "status"] == "paid"].reset_index()
    seen = read_table(tmp_path / "with", HOUSEHOLDS).set_index("household_id")
    rsa = paid[paid["benefit"] == "rsa"]["household_id"]
    assert len(rsa) == 0 or seen.loc[rsa, "receives_rsa"].all()  # a claim paid shows as a receipt


def test_households_keep_their_ids_and_draws_leave_and_arrive_and_people_age(world):
    folders = [quarter_folder(world, i) for i in range(SETTINGS.scenario.quarters)]
    states = [read_state(f) for f in folders]
    for before, after in itertools.pairwise(states):
        stay = np.intersect1d(before.ids, after.ids)
        assert 0 < len(stay) < len(before.ids)  # some left
        arrived = np.setdiff1d(after.ids, before.ids)
        assert len(arrived) and arrived.min() > before.ids.max()  # ids are never reused
        i, j = (pd.Index(w.ids).get_indexer(stay) for w in (before, after))
        assert np.array_equal(before.traits.know[i], after.traits.know[j])
        assert np.array_equal(before.traits.fear[i], after.traits.fear[j])
    people = [s.persons.set_index("person_id")["age"] for s in states]
    there = people[0].index.intersection(people[QUARTERS_PER_YEAR].index)
    assert (
        len(there) > 100 and ((people[QUARTERS_PER_YEAR][there] - people[0][there]) == 1).all()
    )  # a year older in a year


def test_the_next_quarter_follows_the_folder_s_own_calibration(world, tmp_path):
    moved = tmp_path / "unreachable"
    shutil.copytree(world, moved, ignore=shutil.ignore_patterns(NEXT_QUARTER))
    raw = yaml.safe_load((moved / WORLD).read_text())
    raw["outreach"]["reach"]["intercept"] = -30.0  # no contact reaches anyone in this world
    (moved / WORLD).write_text(yaml.safe_dump(raw))
    next_quarter(moved, tmp_path / "q1", SETTINGS, quiet=True)
    truth = read_table(tmp_path / "q1", OUTCOMES)
    assert not (truth["claim_if_contacted"] & ~truth["claim_if_not_contacted"]).any()
    shipped = read_table(quarter_folder(world, 1), OUTCOMES)
    assert (shipped["claim_if_contacted"] & ~shipped["claim_if_not_contacted"]).any()
