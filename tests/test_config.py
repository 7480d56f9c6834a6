"""One configuration: a settings file that changes one field in every section, and each change
taking effect where that section is used (the generator, the law engine, LightGBM, the registry,
the API, monitoring and the fairness bound)."""

from __future__ import annotations

import json
import re

import httpx
import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bench.harness import ApiProcess
from nonrecours.app.cli import app
from nonrecours.core.config import Settings, load_settings
from nonrecours.core.io import read_table
from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS
from nonrecours.serving.request import example_households
from nonrecours.serving.secrets import api_keys, resolve

runner = CliRunner()

CHANGES = {
    "scenario": {"households": 40},
    "law": {"reference_month": "2025-03"},
    "training": {
        "num_leaves": 7,
        "capacity_share": 0.05,
    },  # 5%: on 300 test households 1% is 3 rows, too few for a group gap
    "registry": {"model_name": "nonrecours-config-test"},
    "serving": {"max_households_per_request": 2},
    "monitoring": {"max_drift_share": 1.0},
    "fairness": {
        "max_group_recall_gap": 0.0,
        "min_group_positives": 5,
    },  # 300 test households: few groups reach 30 positives
    "campaign": {"holdout_share": 0.5},
    "loop": {"exploration_band": 2.0},  # the loop's campaign design: checked below
    "web": {"page_size": 20},  # pages of the configured size: tests/test_web.py (web__page_size=25)
}


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "settings.yaml"
    path.write_text(yaml.safe_dump(CHANGES))
    return path


def test_the_file_changes_one_field_in_every_section_and_loading_applies_each(settings_file):
    assert set(CHANGES) == set(Settings.model_fields), "a new section needs its line here and a check below"
    loaded, defaults = load_settings(settings_file), Settings()
    for section, fields in CHANGES.items():
        for name, value in fields.items():
            assert getattr(getattr(defaults, section), name) != value, f"{section}.{name} must differ from its default"
            assert getattr(getattr(loaded, section), name) == value


def test_the_loop_s_design_comes_from_its_settings(settings_file, tmp_path):
    from nonrecours.serving.loop_agency import LoopPlan, design_of, region_size

    plan = LoopPlan(tmp_path, tmp_path / "loop", rounds=1, capacity=100, seed=0)
    loaded, defaults = design_of(plan, load_settings(settings_file), 1), design_of(plan, Settings(), 1)
    assert loaded.band == 200 and defaults.band == 100  # exploration_band x capacity
    assert (loaded.holdout_share, loaded.exploration_share) == (0.1, 0.1)  # the loop's, not campaign.holdout_share
    assert region_size(loaded) == region_size(defaults) + 100


def test_an_unknown_field_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  num_leafs: 7\n")
    result = runner.invoke(app, ["card", "--config", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "num_leafs" in result.output


class LawMonths:
    """Records the month each law-engine run computed, around the real law engine."""

    def __init__(self, real):
        self.real, self.months = real, []

    def __call__(self, *args, **kwargs):
        self.months.append(kwargs["law"].reference_month)
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def generated(settings_file, tmp_path_factory):
    import nonrecours.data.generate as generate

    folder = tmp_path_factory.mktemp("generated")
    spy = LawMonths(generate.run_law_engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generate, "run_law_engine", spy)
        result = runner.invoke(
            app, ["generate", "--config", str(settings_file), "--out", str(folder), "--workers", "1", "-q"]
        )
    assert result.exit_code == 0, result.output
    return folder, spy.months


def test_scenario_households_sets_the_population_size(generated):
    folder, _ = generated
    assert len(read_table(folder, HOUSEHOLDS)) == CHANGES["scenario"]["households"]


def test_law_reference_month_reaches_the_law_engine(generated):
    folder, months = generated
    # the history quarter (declared situation), the current quarter, the next one: each its own month
    assert months == ["2024-12", CHANGES["law"]["reference_month"], "2025-06"]
    assert json.loads((folder / "calibration.json").read_text())["settings"]["law"]["reference_month"] == "2025-03"
    assert (
        json.loads((folder / "next_quarter" / "calibration.json").read_text())["settings"]["law"]["reference_month"]
        == "2025-06"
    )


def test_entitlements_take_the_month_from_the_option_then_the_file_then_the_population(generated, tmp_path):
    import nonrecours.law.situation as situation

    folder, _ = generated
    june = tmp_path / "june.yaml"
    june.write_text("law:\n  reference_month: '2025-06'\n")
    spy = LawMonths(situation.run_law_engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(situation, "run_law_engine", spy)
        for extra in ([], ["--config", str(june)], ["--config", str(june), "--reference-month", "2025-01"]):
            result = runner.invoke(
                app, ["entitlements", "--input", str(folder), "--out", str(tmp_path), "--workers", "1", "-q", *extra]
            )
            assert result.exit_code == 0, result.output
    # the population's own month; the file's over it (an earlier run's month used to win); the option over both
    assert spy.months == ["2025-03", "2025-06", "2025-01"]


@pytest.fixture(scope="module")
def own_store(tmp_path_factory):
    """A store of this module's own: its forced promotion must not enter the session's promotion log."""
    return f"sqlite:///{tmp_path_factory.mktemp('config-mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def trained(settings_file, small_population, own_store):
    result = runner.invoke(
        app,
        ["train", "--input", str(small_population), "--config", str(settings_file), "--tracking-uri", own_store, "-q"],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_registry_model_name_names_the_registered_model(trained, own_store):
    client = mlflow.MlflowClient(tracking_uri=own_store)
    versions = client.search_model_versions("name='nonrecours-config-test'")
    assert [str(v.version) for v in versions] == ["1"]
    assert "nonrecours-config-test version 1" in trained


def test_training_num_leaves_reaches_lightgbm(trained, own_store, tracking_store):
    from nonrecours.training.registry import load_scorer

    mlflow.set_tracking_uri(own_store)
    booster = load_scorer("models:/nonrecours-config-test/1").booster
    assert "[num_leaves: 7]" in booster.model_to_string()
    mlflow.set_tracking_uri(tracking_store)
    assert (
        "[num_leaves: 31]" in load_scorer("models:/nonrecours/1").booster.model_to_string()
    )  # the default, for contrast


def test_fairness_bound_reaches_the_promotion_gate(trained):
    assert "challenger" in trained and "exceeds the bound 0.000" in trained


def test_serving_limit_reaches_the_running_service(settings_file, trained, small_population, own_store, tmp_path):
    # The file names another model too (registry.model_name): the service serves that one, once promoted.
    promoted = runner.invoke(
        app,
        [
            "promote",
            "--config",
            str(settings_file),
            "--version",
            "1",
            "--reason",
            "config test",
            "--tracking-uri",
            own_store,
        ],
    )
    assert promoted.exit_code == 0 and "nonrecours-config-test version 1 is now champion" in promoted.output, (
        promoted.output
    )
    server = ApiProcess(
        own_store,
        f"sqlite:///{tmp_path / 'decisions.db'}",
        small_population / "secrets.env",
        tmp_path / "server.log",
        config=settings_file,
    )
    auth = {"Authorization": f"Bearer {api_keys(resolve(small_population / 'secrets.env', {}))[0]}"}
    with server:
        server.wait()
        three = {"households": example_households()[:3]}
        refused = httpx.post(server.url + "/score", json=three, headers=auth, timeout=120)
        assert refused.status_code == 400 and "households" in refused.text, refused.text
        two = {"households": example_households()[:2]}
        assert httpx.post(server.url + "/score", json=two, headers=auth, timeout=120).status_code == 200


def test_serving_workers_and_limit_shape_the_service_class():
    from nonrecours.app.environment import Environment
    from nonrecours.app.service import build_service

    service = build_service(
        load_settings(None, serving__workers=3, serving__max_households_per_request=7), Environment()
    )
    assert service.config["workers"] == 3
    assert service.apis["score"].input_spec.model_json_schema()["properties"]["households"]["maxItems"] == 7


def test_monitoring_drift_threshold_reaches_the_report(settings_file, small_population, tracking_store, tmp_path):
    from nonrecours.data.shift import cut_pay
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.monitoring.report import build_report
    from nonrecours.serving.scoring import ModelRanker, score_extract
    from nonrecours.training.registry import load_scorer

    mlflow.set_tracking_uri(tracking_store)
    scorer = load_scorer("models:/nonrecours/1")
    individuals, households = read_table(small_population, INDIVIDUALS), read_table(small_population, HOUSEHOLDS)
    settings = load_settings(settings_file)

    def scored(ind):
        return score_extract(
            ind,
            households,
            ModelRanker(scorer),
            language="en",
            law=settings.law.model_copy(update={"workers": 1}),
            css=load_law_parameters().css,
            n_reasons=0,
            partition_households=5000,
            quiet=True,
        )

    reference, current = scored(individuals), scored(cut_pay(individuals, households, share=1.0, factor=0.3))
    verdicts = {}
    for name, cfg in (("default", Settings().monitoring), ("file", settings.monitoring)):
        report = build_report(
            reference,
            current,
            cfg=cfg,
            fairness_cfg=settings.fairness,
            capacity_share=0.05,
            model="m",
            reference_name="a",
            current_name="b",
        )
        verdicts[name] = report.drift.breached
    assert verdicts == {"default": True, "file": False}


def test_campaign_holdout_share_sets_the_share_of_the_top_not_contacted(generated, settings_file, tmp_path):
    folder, _ = generated
    secrets = tmp_path / "secrets.env"
    assert runner.invoke(app, ["keys", "--out", str(secrets)]).exit_code == 0
    out = tmp_path / "campaign.csv"
    result = runner.invoke(
        app,
        [
            "campaign",
            "--input",
            str(folder),
            "--config",
            str(settings_file),
            "--ranking",
            "rules",
            "--capacity",
            "4",
            "--out",
            str(out),
            "--secrets",
            str(secrets),
            "--decision-log",
            f"sqlite:///{tmp_path / 'd.db'}",
            "--workers",
            "1",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    arms = pd.read_csv(out)["arm"].value_counts()
    assert arms["holdout"] == arms["contact"] == 4  # half of the top, 8 households for 4 contacts


def test_options_that_set_a_setting_take_its_range_from_the_settings_and_declare_none_of_their_own():
    """An option bound to a setting says so in its help (``settings: section.field``), shows the
    setting's range there, and has no range of its own (so the two cannot disagree); the request
    models of the API that take a setting's value document the same range."""
    import typer

    from nonrecours.app.cli import app
    from nonrecours.core.config import bounds, field_help
    from nonrecours.serving.request import campaign_arguments

    def commands(group):
        yield group
        for sub in getattr(group, "commands", {}).values():
            yield from commands(sub)

    bound = []
    for cmd in commands(typer.main.get_command(app)):
        for param in cmd.params:
            found = re.search(r"settings: (\w+)\.(\w+)\)", param.help or "")
            if found:
                bound.append((cmd.name, param.name))
                assert param.min is None and param.max is None, (cmd.name, param.name)
                assert param.help.startswith(field_help(*found.groups())), (cmd.name, param.name)
    assert ("campaign", "holdout") in bound and ("generate", "households") in bound and len(bound) > 15
    assert "0<=x<=0.9" in field_help("campaign", "holdout_share")
    for name in ("holdout_share", "exploration_share"):
        (field,) = [m for m in campaign_arguments(10)[name].__metadata__ if hasattr(m, "json_schema_extra")]
        b = bounds("campaign", name)
        assert field.json_schema_extra == {"minimum": b["ge"], "maximum": b["le"]}
