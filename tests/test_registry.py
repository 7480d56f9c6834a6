"""MLflow tracking, the registry and the promotion gate, against a real temporary SQLite store."""

from __future__ import annotations

import json
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.core.config import RegistryConfig
from nonrecours.training.gate import CHALLENGER, CHAMPION, decide, decide_observed
from nonrecours.training.policies import Estimate
from nonrecours.training.registry import load_scorer, promotion_log_path

runner = CliRunner()


def metrics_frame(model_auc=0.9, rules_auc=0.8, model_euros=1000.0, rules_euros=900.0) -> pd.DataFrame:
    rows = []
    for method, auc, euros in (("model", model_auc, model_euros), ("rules", rules_auc, rules_euros)):
        rows.append(
            {"population": "candidates", "benefit": "overall", "method": method, "roc_auc": auc, "euros_at_k": euros}
        )
    return pd.DataFrame(rows)


MAX_GAP = 0.2


def test_a_model_that_beats_the_rules_with_no_champion_becomes_champion():
    d = decide(metrics_frame(), None, 0.1, "tenure: a vs b", MAX_GAP)
    assert d.alias == CHAMPION and "no champion yet" in d.reasons[0]


def test_a_model_that_does_not_beat_the_rules_stays_challenger_and_says_why():
    d = decide(metrics_frame(model_euros=800.0), None, 0.1, "x", MAX_GAP)
    assert d.alias == CHALLENGER and any("euros_at_k" in r and "rules" in r for r in d.reasons)


def test_a_model_worse_than_the_champion_stays_challenger():
    d = decide(metrics_frame(), metrics_frame(model_auc=0.95), 0.1, "x", MAX_GAP)
    assert d.alias == CHALLENGER and any("champion" in r for r in d.reasons)


def _estimate(value: float, se: float = 100.0, n: int = 400) -> Estimate:
    return Estimate(value, value - 1.645 * se, value + 1.645 * se, se, n)


def test_the_observable_gate_promotes_only_a_ranking_clearly_at_least_as_good_as_every_incumbent_on_the_same_campaign():
    incumbents = {"the ranking that chose the campaign (nonrecours)": _estimate(900.0), "the rules": _estimate(700.0)}
    promoted = decide_observed(_estimate(1200.0), incumbents)
    assert promoted.alias == CHAMPION and "the rules" in promoted.reasons[0] and "90% interval" in promoted.reasons[0]
    kept = decide_observed(_estimate(880.0, se=10.0), incumbents)
    assert (
        kept.alias == CHALLENGER and len(kept.reasons) == 1 and "the ranking that chose the campaign" in kept.reasons[0]
    )
    noisy = decide_observed(
        _estimate(950.0, se=200.0), incumbents
    )  # better on the point estimate, not beyond the noise
    assert noisy.alias == CHALLENGER and "lower bound" in noisy.reasons[0]
    none = decide_observed(Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 1), incumbents)
    assert none.alias == CHALLENGER and "covered 1 of its picks" in none.reasons[0]
    # an incumbent the campaign gives no estimate for is no bar
    assert decide_observed(
        _estimate(500.0), {"the rules": Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0)}
    ).promoted


def test_a_model_that_misses_one_group_stays_challenger():
    d = decide(metrics_frame(), None, 0.35, "head_sex: F vs M", MAX_GAP)
    assert d.alias == CHALLENGER and "head_sex: F vs M" in d.reasons[0]


@pytest.fixture(scope="module")
def store(small_population, tracking_store):
    """The session store holds version 1 from the pipeline fixture; train once more with a
    gate that cannot be passed, so version 2 is a challenger."""
    strict = small_population / "strict.yaml"
    # the session's 5% capacity, and groups gated from 5 positives: 300 test households hold few
    strict.write_text(
        "fairness:\n  max_group_recall_gap: 0.0\n  min_group_positives: 5\ntraining:\n  capacity_share: 0.05\n"
    )
    result = runner.invoke(
        app,
        ["train", "--input", str(small_population), "--tracking-uri", tracking_store, "--config", str(strict), "-q"],
    )
    assert result.exit_code == 0, result.output
    assert "challenger" in result.output and "exceeds the bound 0.000" in result.output
    return tracking_store


def test_the_first_version_is_champion_and_the_strict_second_a_challenger(store):
    client = mlflow.MlflowClient(tracking_uri=store)
    assert str(client.get_model_version_by_alias("nonrecours", CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias("nonrecours", CHALLENGER).version) == "2"
    tags = client.get_model_version("nonrecours", "2").tags
    assert tags["promotion.alias"] == CHALLENGER and "exceeds the bound" in tags["promotion.reason"]


def test_the_registered_model_loads_and_predicts_with_categorical_features(store, evaluation):
    mlflow.set_tracking_uri(store)
    scorer = load_scorer("models:/nonrecours@champion")
    t = evaluation.test.head(300)
    p = scorer.predict(t)
    assert p.shape == (300,) and np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert str(t["tenure"].dtype) == "category"


def test_the_run_logs_what_people_look_at(store):
    client = mlflow.MlflowClient(tracking_uri=store)
    run_id = client.get_model_version("nonrecours", "1").run_id
    run = client.get_run(run_id)
    assert run.data.params["generator.seed"] == "7"
    assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags["mlflow.source.git.commit"])
    assert run.data.metrics["candidates.overall.model.roc_auc"] > run.data.metrics["candidates.overall.rules.roc_auc"]
    assert "fairness.worst_group_recall_gap" in run.data.metrics
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"profiles-train-valid", "profiles-test"}
    assert all(i.dataset.digest for i in run.inputs.dataset_inputs)
    names = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "evaluation")
    }
    for expected in (
        "model_card.md",
        "promotion_decision.json",
        "evaluation/roc.png",
        "evaluation/precision_recall.png",
        "evaluation/calibration.png",
        "evaluation/feature_importance.png",
        "evaluation/shap_summary.png",
        "evaluation/group_recall.csv",
    ):
        assert expected in names, expected
    example = json.loads(mlflow.artifacts.load_text("models:/nonrecours/1/input_example.json"))
    assert len(example["data"]) == 1  # one synthetic row (medians and modes), no household's own
    card = mlflow.artifacts.load_text(f"runs:/{run_id}/model_card.md")
    assert "Never for control, fraud detection or sanctions" in card and "head_sex" in card


def test_a_forced_promotion_needs_a_reason_and_is_recorded(store):
    result = runner.invoke(app, ["promote", "--version", "2", "--reason", " ", "--tracking-uri", store])
    assert result.exit_code == 2 and "reason" in result.output
    result = runner.invoke(
        app, ["promote", "--version", "2", "--reason", "reviewed by the DPO on 2026-11-28", "--tracking-uri", store]
    )
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=store)
    assert str(client.get_model_version_by_alias("nonrecours", CHAMPION).version) == "2"
    entries = [json.loads(line) for line in promotion_log_path(RegistryConfig(), store).read_text().splitlines()]
    log = [e for e in entries if e["model"] == "nonrecours"]  # other tests of the session log outreach models' too
    assert "nonrecours" in {e["model"] for e in entries} <= {"nonrecours", "nonrecours-outreach"}
    assert [(e["version"], e["alias"], e["forced"]) for e in log][-3:] == [
        ("1", CHAMPION, False),
        ("2", CHALLENGER, False),
        ("2", CHAMPION, True),
    ]
    assert log[-1]["reason"] == "reviewed by the DPO on 2026-11-28" and log[-1]["previous_champion"] == "1"


def test_promoting_a_version_that_does_not_exist_is_a_clear_error(store):
    result = runner.invoke(app, ["promote", "--version", "99", "--reason", "x", "--tracking-uri", store])
    assert result.exit_code == 2 and "99" in result.output


OPEN_STORE = """
import sys, time
from pathlib import Path
from nonrecours.training.registry import prepare_tracking_store
import mlflow
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
uri = prepare_tracking_store(sys.argv[1])
mlflow.MlflowClient(tracking_uri=uri).search_registered_models()
"""


def test_processes_opening_a_new_sqlite_store_at_once_do_not_break_its_migration(tmp_path):
    # MLflow alone fails here (measured: most of 4 processes opening a new file at once die in
    # its migration); this is what the service's workers and a training run started beside a
    # waiting service do.
    import subprocess
    import sys

    uri, go = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, uri, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(e[-1500:] for e in errors)
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.create_registered_model("still-usable").name == "still-usable"


class _Payload:
    """What an attacker with write access to the artifact store puts in a model: a pickle that
    runs code when loaded (here: writes a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.write_text, (self.marker, "ran"))


def test_a_pickled_model_in_the_registry_is_refused_before_anything_is_unpickled(tmp_path):
    """MLflow's own loader runs the pickle (shown in a child process, so this one stays clean);
    load_scorer refuses the version without running it."""
    import os
    import pickle
    import subprocess
    import sys

    import yaml

    from nonrecours.training.registry import UnsafeModel

    marker, model = tmp_path / "marker", tmp_path / "model"
    model.mkdir()
    (model / "model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    (model / "MLmodel").write_text(
        yaml.safe_dump(
            {
                "flavors": {
                    "lightgbm": {
                        "data": "model.pkl",
                        "model_class": "lightgbm.sklearn.LGBMClassifier",
                        "serialization_format": "cloudpickle",
                    }
                },
                "metadata": {},
            }
        )
    )
    uri, before = f"sqlite:///{tmp_path / 'mlflow.db'}", mlflow.get_tracking_uri()
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("evil"))
    client.log_artifacts(run.info.run_id, str(model), "model")
    client.create_registered_model("evil")
    client.create_model_version("evil", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    mlflow.set_tracking_uri(uri)
    try:
        with pytest.raises(UnsafeModel, match=r"lightgbm\.sklearn\.LGBMClassifier"):
            load_scorer("models:/evil/1")
    finally:
        mlflow.set_tracking_uri(before)
    assert not marker.exists()
    script = (
        f"import mlflow; mlflow.set_tracking_uri({uri!r})\ntry:\n    "
        "mlflow.lightgbm.load_model('models:/evil/1')\nexcept Exception:\n    pass"
    )
    env = {
        k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    }  # MLflow's default: allowed
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300, env=env)
    assert marker.read_text() == "ran"  # the threat is real: MLflow's loader ran the attacker's code


@pytest.mark.parametrize(
    "spec, why",
    [
        ({"flavors": {"python_function": {"loader_module": "evil_loader", "code": "code"}}}, "python_function"),
        (
            {"flavors": {"lightgbm": {"model_class": "lightgbm.basic.Booster", "data": "../../etc/passwd.lgb"}}},
            "not a .lgb file",
        ),
        ({"flavors": {"lightgbm": {"model_class": "lightgbm.basic.Booster", "data": "model.pkl"}}}, "not a .lgb file"),
    ],
)
def test_only_a_lightgbm_booster_saved_as_text_beside_its_mlmodel_passes_the_check(spec, why):
    from nonrecours.training.registry import UnsafeModel, check_model_spec

    with pytest.raises(UnsafeModel, match=why):
        check_model_spec(spec, "models:/x/1")
    assert (
        check_model_spec(
            {"flavors": {"lightgbm": {"model_class": "lightgbm.basic.Booster", "data": "model.lgb"}}}, "models:/x/1"
        )
        == "model.lgb"
    )


def test_a_registry_that_never_answers_fails_a_model_load_within_the_configured_timeout(monkeypatch):
    """A tracking server that accepts the connection and then says nothing: with MLflow's defaults
    (120 s, 7 retries) a model load would hang for many minutes; the registry section's timeout
    and retries bound it."""
    import socket
    import threading
    import time

    from nonrecours.app.environment import Environment
    from nonrecours.app.stores import Run
    from nonrecours.core.config import Settings
    from nonrecours.training.registry import load_champion

    for name in (
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION",
    ):
        monkeypatch.delenv(name, raising=False)  # the application sets them; monkeypatch puts them back afterwards
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []
    threading.Thread(target=lambda: held.extend(silent.accept() for _ in range(16)), daemon=True).start()
    settings = Settings(registry={"request_timeout_seconds": 1.0, "request_max_retries": 0})
    start = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timed? ?out|timeout"):
        # the application sets the registry section's limits in the process that opens the store
        load_champion(
            settings.registry,
            Run(settings, Environment(), tracking=f"http://127.0.0.1:{silent.getsockname()[1]}").tracking_uri,
        )
    assert time.monotonic() - start < 15
    silent.close()
