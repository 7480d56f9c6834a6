"""A territory's own calibration: a partial file merged over the shipped one, checked key by key,
recorded in the population's folder and used by what simulates there."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.data.calibration import (
    CalibrationError,
    calibration_of,
    merge_calibration,
    read_calibration_overlay,
    shipped_calibration,
)
from nonrecours.data.folders import WORLD, folder_world

TERRITORIES = sorted(p.name for p in resources.files("nonrecours.data").joinpath("territories").iterdir())


def test_a_partial_file_changes_what_it_names_and_keeps_the_rest():
    merged = merge_calibration(
        {"outreach": {"help_with_procedure": 0.7}, "non_take_up": {"rsa": {"ntu": 0.45}}}, source="t"
    )
    cal, shipped = calibration_of(merged), calibration_of(shipped_calibration())
    assert cal.outreach.help_with_procedure == 0.7 and cal.ntu["rsa"] == 0.45
    assert cal.outreach.reassurance == shipped.outreach.reassurance and cal.ntu["ppa"] == shipped.ntu["ppa"]
    assert cal.ntu_source["rsa"] == shipped.ntu_source["rsa"]  # a merged mapping keeps its other keys
    assert cal.claim_model == shipped.claim_model
    assert merge_calibration({}, source="t") == shipped_calibration()


@pytest.mark.parametrize(
    ("overlay", "said"),
    [
        (
            {"outreach": {"help": 0.7}},
            "t.yaml: outreach.help: unknown key; known here: ['assumption', 'help_with_procedure'",
        ),
        ({"nonrecours": 1}, "t.yaml: nonrecours: unknown key"),
        ({"non_take_up": {"rsa": {"ntu": "a third"}}}, "t.yaml: non_take_up.rsa.ntu: Input should be a valid number"),
        (
            {"outreach": {"help_with_procedure": 1.5}},
            "t.yaml: outreach.help_with_procedure: Input should be less than or equal to 1 (got 1.5)",
        ),
        ({"non_take_up": {"rsa": {"ntu": 0}}}, "t.yaml: non_take_up.rsa.ntu: Input should be greater than 0 (got 0)"),
        ({"claim_model": 3}, "t.yaml: claim_model: expected a mapping of keys"),
        ({"outreach": {"reach": {"intercept": {"x": 1}}}}, "t.yaml: outreach.reach.intercept: expected a value"),
    ],
)
def test_a_key_the_calibration_lacks_a_wrong_type_or_a_value_out_of_range_is_refused_with_its_path(overlay, said):
    with pytest.raises(CalibrationError) as refused:
        merge_calibration(overlay, source="t.yaml")
    assert str(refused.value).startswith(said), refused.value


@pytest.mark.parametrize("name", TERRITORIES)
def test_every_shipped_territory_differs_from_the_shipped_world_in_reach_help_barriers_and_non_take_up(name):
    path = resources.files("nonrecours.data").joinpath("territories", name)
    cal, shipped = calibration_of(read_calibration_overlay(path)), calibration_of(shipped_calibration())
    assert cal.outreach.reach != shipped.outreach.reach
    assert (cal.outreach.help_with_procedure, cal.outreach.reassurance) != (
        shipped.outreach.help_with_procedure,
        shipped.outreach.reassurance,
    )
    assert cal.claim_model != shipped.claim_model
    assert cal.ntu != shipped.ntu
    assert yaml.safe_load(path.read_text()) and path.read_text().startswith("# ")  # says what it represents
    assert len(TERRITORIES) >= 3


def test_a_population_records_its_calibration_and_a_bad_file_stops_the_command_naming_the_key(tmp_path):
    territory = tmp_path / "territory.yaml"
    territory.write_text("outreach:\n  reassurance: 0.55\nnon_take_up:\n  rsa: {ntu: 0.5}\n")
    out = tmp_path / "pop"
    made = CliRunner().invoke(
        app,
        [
            "generate",
            "-n",
            "150",
            "--seed",
            "4",
            "--quarters",
            "1",
            "--out",
            str(out),
            "-q",
            "--calibration",
            str(territory),
        ],
    )
    assert made.exit_code == 0, made.output
    world, source = folder_world(out)
    assert source == str(out / WORLD) and str(territory) in (out / WORLD).read_text().splitlines()[0]
    assert calibration_of(world).outreach.reassurance == 0.55 and calibration_of(world).ntu["rsa"] == 0.5
    assert world == merge_calibration(yaml.safe_load(territory.read_text()), source="t")
    (out / WORLD).unlink()  # a folder that records none gets the shipped one, and says so
    world, source = folder_world(out)
    assert world == shipped_calibration() and "records none" in source
    territory.write_text("outreach:\n  reasurance: 0.55\n")
    refused = CliRunner().invoke(
        app, ["generate", "-n", "150", "--out", str(tmp_path / "no"), "-q", "--calibration", str(territory)]
    )
    assert refused.exit_code == 2 and "outreach.reasurance: unknown key" in " ".join(refused.output.split())
    assert not (tmp_path / "no").exists()
