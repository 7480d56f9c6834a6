"""The scoring API end to end: a real BentoML server started with `nonrecours serve`, the session's
registry and a SQLite decision log."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.harness import ApiProcess
from nonrecours.serving.decision_log import DecisionLog, connect, pseudonymise
from nonrecours.serving.request import example_households
from nonrecours.serving.secrets import api_keys, pseudonym_key, resolve

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def api(small_population, tracking_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    server = ApiProcess(
        tracking_store, f"sqlite:///{folder / 'decisions.db'}", small_population / "secrets.env", folder / "server.log"
    )
    with server:
        server.wait()
        yield server


@pytest.fixture(scope="module")
def auth(small_population):
    return {"Authorization": f"Bearer {api_keys(resolve(small_population / 'secrets.env', {}))[0]}"}


@pytest.fixture(scope="module")
def log(api, small_population):
    return DecisionLog(connect(api.decision_log_url), pseudonym_key(resolve(small_population / "secrets.env", {})))


def households(*ids: int) -> dict:
    """The shipped example's first households, renumbered."""
    hs = copy.deepcopy(example_households()[: len(ids)])
    for h, i in zip(hs, ids):
        h["household_id"] = i
    return {"households": hs}


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/metrics", "/docs.json"])
def test_probes_metrics_and_the_openapi_document_are_open(api, path):
    assert httpx.get(api.url + path, timeout=30).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-key-at-all-no"}, {"Authorization": "Basic abc"}]
)
@pytest.mark.parametrize("path", ["/score", "/campaign", "/outcomes", "/"])
def test_everything_else_needs_an_api_key(api, path, headers):
    r = httpx.post(api.url + path, json=households(1), headers=headers, timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "missing or invalid API key"


def test_the_example_is_scored_logged_and_explained(api, auth, log, tracking_store):
    import mlflow

    body = json.loads(Path("serving/nonrecours/serving/examples/households.json").read_text())
    r = httpx.post(api.url + "/score", json=body, headers=auth, timeout=120)
    assert r.status_code == 200, r.text
    result = r.json()
    champion = mlflow.MlflowClient(tracking_store).get_model_version_by_alias("nonrecours", "champion").version
    assert [h["household_id"] for h in result] == [h["household_id"] for h in body["households"]]
    for h in result:
        assert h["model_name"] == "nonrecours" and h["model_version"] == str(champion)
        assert len(h["scores"]) == 8
        values = [s["expected_unclaimed_monthly"] for s in h["scores"]]
        assert values == sorted(values, reverse=True)
        for s in h["scores"]:
            assert s["expected_unclaimed_monthly"] == pytest.approx(s["p_unclaimed"] * s["estimated_monthly_amount"])
            # up to three reasons from the model, then what the law engine estimated, if anything
            # in French (serving.language's default): agents read them
            model_said = [x for x in s["reasons"] if not x.startswith("Montant OpenFisca-France calculé avec")]
            assert 1 <= len(model_said) <= 3 and all(
                re.search(r"\((augmente|diminue) le score\)$", x) for x in model_said
            )
            assert len(s["reasons"]) - len(model_said) <= 1
    # The unemployed single person with no income, entitled to RSA on these data, is flagged for it.
    first = {s["benefit"]: s for s in result[0]["scores"]}
    assert first["rsa"]["law_eligible"] and first["rsa"]["p_unclaimed"] > 0.5
    # the agency holds neither its recent pay nor its rent: the agent is told, and what to ask for
    assert "revenu d'activité estimé" in first["rsa"]["reasons"][-1] and "le bail" in first["rsa"]["reasons"][-1]
    logged = log.read()
    for h in body["households"]:
        assert (logged["household_pseudonym"] == pseudonymise(h["household_id"], log.key)).sum() >= 1
    assert not logged["features"].astype(str).str.contains("household_id").any()


def test_an_outcome_is_recorded_against_the_scored_household(api, auth, log):
    assert httpx.post(api.url + "/score", json=households(4242), headers=auth, timeout=120).status_code == 200
    outcome = {
        "household_id": 4242,
        "benefit": "rsa",
        "contacted": True,
        "claimed": True,
        "amount_granted": 560.0,
        "outcome_date": TODAY,
    }
    r = httpx.post(api.url + "/outcomes", json=outcome, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["household_pseudonym"] == pseudonymise(4242, log.key)
    never = httpx.post(api.url + "/outcomes", json={**outcome, "household_id": 999_999_999}, headers=auth, timeout=30)
    assert never.status_code == 404 and "no decision was logged" in never.text


def test_every_error_has_the_shape_the_openapi_document_declares(api, auth):
    """A refused body, an endpoint's own refusal, an unknown household, a body that is not JSON,
    an outcome dated before its score: each answered as the document says, with the declared
    statuses and the Error schema (BentoML's own were a list in `detail` and a one-element list)."""
    import jsonschema_rs

    doc = httpx.get(api.url + "/docs.json", timeout=30).json()
    error = jsonschema_rs.validator_for({**doc["components"]["schemas"]["Error"]})
    assert doc["paths"]["/score"]["post"]["security"] == [{"apiKey": []}]
    assert httpx.post(api.url + "/score", json=households(6161), headers=auth, timeout=120).status_code == 200
    outcome = {"household_id": 6161, "benefit": "rsa", "result": "declined", "outcome_date": TODAY}
    cases = {
        "/score": ({"households": [{"household_id": 1}]}, 400),
        "/outcomes": ({**outcome, "household_id": 999_999_998}, 404),
        "/outcomes/batch": ({"outcomes": [{**outcome, "outcome_date": "2001-01-01"}]}, 400),
        "/campaign": ({"households": households(7, 7)["households"], "capacity": 1}, 400),
    }
    for path, (body, status) in cases.items():
        r = httpx.post(api.url + path, json=body, headers=auth, timeout=120)
        assert r.status_code == status and str(status) in doc["paths"][path]["post"]["responses"], (
            path,
            r.status_code,
            r.text[:300],
        )
        assert isinstance(r.json(), dict) and error.is_valid(r.json()), (path, r.text[:300])
    assert (
        "before the decision"
        in httpx.post(
            api.url + "/outcomes", json={**outcome, "outcome_date": "2001-01-01"}, headers=auth, timeout=30
        ).json()["error"]
    )
    multipart = httpx.post(
        api.url + "/campaign", content=b"{}", headers={**auth, "Content-Type": "multipart/form-data"}, timeout=30
    )
    assert multipart.status_code == 415 and error.is_valid(multipart.json())


def test_campaign_outcomes_name_their_decision_carry_the_sender_and_are_recorded_once(api, auth, log):
    """A campaign's outcome (``result``) through /outcomes and /outcomes/batch: linked to the
    decision it names, its sender the API key's id (never the key), a retry with the same
    idempotency key recorded once, a batch with one bad row recorded not at all."""
    assert httpx.post(api.url + "/score", json=households(5151, 5152), headers=auth, timeout=120).status_code == 200
    first = log.read()
    decision = int(first.loc[first["household_pseudonym"] == pseudonymise(5151, log.key), "id"].iloc[-1])
    outcome = {
        "household_id": 5151,
        "benefit": "rsa",
        "result": "opened",
        "amount_granted": 530.0,
        "outcome_date": TODAY,
        "campaign_id": "20261120T090000-abc123",
        "decision_id": decision,
        "idempotency_key": "campaign-5151-rsa",
    }
    for _ in range(2):
        r = httpx.post(api.url + "/outcomes", json=outcome, headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["decision_id"] == decision, r.text
    recorded = log.read_outcomes()
    mine = recorded[recorded["idempotency_key"] == "campaign-5151-rsa"]
    assert len(mine) == 1 and mine["result"].iloc[0] == "opened" and bool(mine["claimed"].iloc[0])
    key = auth["Authorization"].removeprefix("Bearer ")
    assert mine["sender"].iloc[0].startswith("key-") and key not in mine["sender"].iloc[0]
    batch = [
        {
            **outcome,
            "benefit": "ppa",
            "result": "declined",
            "amount_granted": None,
            "idempotency_key": "campaign-5151-ppa",
        },
        {
            **outcome,
            "household_id": 5152,
            "benefit": "ppa",
            "result": "declined",
            "amount_granted": None,
            "idempotency_key": "campaign-5152-ppa",
        },
    ]
    refused = httpx.post(api.url + "/outcomes/batch", json={"outcomes": batch}, headers=auth, timeout=30)
    assert (
        refused.status_code == 404 and "not one of this household" in refused.text
    )  # 5152 cannot answer 5151's decision
    assert len(log.read_outcomes()) == len(recorded)  # all or none
    batch[1].pop("decision_id")
    ok = httpx.post(api.url + "/outcomes/batch", json={"outcomes": batch}, headers=auth, timeout=30)
    assert ok.status_code == 200 and len(ok.json()) == 2, ok.text
    assert len(log.read_outcomes()) == len(recorded) + 2
    bad = httpx.post(
        api.url + "/outcomes",
        json={**outcome, "result": "declined", "idempotency_key": "campaign-5151-x"},
        headers=auth,
        timeout=30,
    )
    assert bad.status_code == 400 and "amount_granted" in bad.text


def test_a_campaign_through_the_api_follows_the_agency_s_ranking_logs_every_arm_and_links_its_outcomes(api, auth, log):
    """POST /campaign with the agency's own priorities: the top of that ranking is the campaign's
    top (contacts plus a holdout drawn in it), the contacts fill the capacity, every household is
    logged with its arm under the campaign id, and an outcome names the decision it answers."""
    body = households(9101, 9102, 9103, 9104, 9105, 9106)
    priorities = [10.0, 60.0, 50.0, 40.0, 30.0, 20.0]  # the agency's own order: 9102 first, 9101 last
    r = httpx.post(
        api.url + "/campaign",
        json={
            **body,
            "capacity": 3,
            "holdout_share": 0.25,
            "exploration_share": 0.0,
            "seed": 4,
            "priorities": priorities,
        },
        headers=auth,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    rows = {h["household_id"]: h for h in out["households"]}
    top = [
        h["household_id"]
        for h in sorted(out["households"], key=lambda h: h["rank"])
        if h["arm"] in ("contact", "holdout")
    ]
    assert top == [9102, 9103, 9104, 9105]  # ceil(3 / 0.75) households from the top of the agency's ranking
    assert (
        sum(h["contacted"] for h in out["households"]) == 3
        and [h["arm"] for h in out["households"]].count("holdout") == 1
    )
    assert all(rows[h]["propensity"] == pytest.approx(0.75) for h in top)
    logged = log.read_campaign(out["campaign_id"])
    assert sorted(logged["decision_id"]) == sorted(h["decision_id"] for h in out["households"])
    assert dict(zip(logged["household_pseudonym"], logged["arm"])) == {
        pseudonymise(h, log.key): rows[h]["arm"] for h in rows
    }
    contacted = next(h for h in out["households"] if h["contacted"])
    outcome = {
        "household_id": contacted["household_id"],
        "benefit": "rsa",
        "result": "unreachable",
        "outcome_date": TODAY,
        "campaign_id": out["campaign_id"],
        "decision_id": contacted["decision_id"],
        "idempotency_key": f"api-campaign-{contacted['household_id']}",
    }
    assert httpx.post(api.url + "/outcomes", json=outcome, headers=auth, timeout=30).status_code == 200
    # refusals name what to fix, and nothing is logged for them
    before = len(log.read())
    twice = {**households(9201, 9201), "capacity": 1}
    r = httpx.post(api.url + "/campaign", json=twice, headers=auth, timeout=60)
    assert r.status_code == 400 and "households.1.household_id" in r.text
    r = httpx.post(
        api.url + "/campaign",
        json={**households(9301, 9302), "capacity": 1, "priorities": [1.0]},
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 400 and "priorities" in r.text
    assert len(log.read()) == before


def _mutated(change):
    body = households(7)
    change(body)
    return body


BAD_REQUESTS = {
    "malformed JSON": (b'{"households": [', None),
    "missing field": (None, _mutated(lambda b: b["households"][0].pop("tenure"))),
    "mistyped field": (None, _mutated(lambda b: b["households"][0]["members"][0].update(age="forty"))),
    "negative income": (None, _mutated(lambda b: b["households"][0]["members"][0].update(known_pay_monthly=-1200))),
    "age of 250": (None, _mutated(lambda b: b["households"][0]["members"][0].update(age=250))),
    "no members": (None, _mutated(lambda b: b["households"][0].update(members=[]))),
    "no households": (None, {"households": []}),
    "not a list": (None, {"households": {"household_id": 1}}),
    "10,000 households": (None, {"households": households(1)["households"] * 10_000}),
}
FIELD_IN_ERROR = {
    "missing field": "tenure",
    "mistyped field": "age",
    "negative income": "known_pay_monthly",
    "age of 250": "age",
    "no members": "members",
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_4xx_naming_the_field_and_the_service_keeps_serving(api, auth, case):
    raw, body = BAD_REQUESTS[case]
    headers = {**auth, "Content-Type": "application/json"}
    r = httpx.post(
        api.url + "/score", content=raw if raw is not None else json.dumps(body), headers=headers, timeout=120
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if case in FIELD_IN_ERROR:
        assert FIELD_IN_ERROR[case] in r.text
    assert httpx.post(api.url + "/score", json=households(8), headers=auth, timeout=120).status_code == 200


def test_concurrent_single_household_requests_share_one_simulation(api, auth):
    def one(i: int) -> int:
        return httpx.post(api.url + "/score", json=households(10_000 + i), headers=auth, timeout=120).status_code

    def mean_batch() -> float:
        metrics = httpx.get(api.url + "/metrics", timeout=30).text  # one worker's metrics: whichever answers
        count = sum(
            float(v) for v in re.findall(r"nonrecours_batch_households_count(?:\{[^}]*\})? ([0-9.e+]+)", metrics)
        )
        total = sum(float(v) for v in re.findall(r"nonrecours_batch_households_sum(?:\{[^}]*\})? ([0-9.e+]+)", metrics))
        return total / count if count else 0.0

    means = []
    for round_ in range(
        3
    ):  # the two workers share the requests as the kernel deals them: a few rounds, each worker's metrics
        with cf.ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(8 * round_, 8 * round_ + 8))) == [200] * 8
        means += [mean_batch() for _ in range(4)]
        if max(means) > 1.0:
            break
    assert max(means) > 1.0, means  # some batches held several households


def test_without_a_champion_the_service_is_up_but_not_ready_then_follows_the_champion_alias(small_population, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text(
        "serving:\n  readiness_retry_seconds: 2\n  champion_refresh_seconds: 2\ntraining:\n  capacity_share: 0.05\n"
    )  # the session's capacity
    server = ApiProcess(
        f"sqlite:///{tmp_path / 'empty-mlflow.db'}",
        f"sqlite:///{tmp_path / 'd.db'}",
        small_population / "secrets.env",
        tmp_path / "server.log",
        config=config,
    )
    with server:
        server.wait("/livez")
        deadline, ready = time.monotonic() + 120, httpx.get(server.url + "/readyz", timeout=30)
        while (
            "no usable champion" not in ready.text and time.monotonic() < deadline
        ):  # first "starting": the load runs in the background
            time.sleep(0.5)
            ready = httpx.get(server.url + "/readyz", timeout=30)
        assert (
            ready.status_code == 503 and ready.json()["ready"] is False and "nonrecours train" in ready.json()["reason"]
        )
        key = api_keys(resolve(small_population / "secrets.env", {}))[0]
        r = httpx.post(
            server.url + "/score", json=households(1), headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        assert r.status_code == 503 and "no usable champion" in r.text
        assert "NOT READY: no usable model nonrecours@champion" in server.log_tail(20_000)
        # A champion appears: the service finds it without a restart.
        from typer.testing import CliRunner

        from nonrecours.app.cli import app

        trained = CliRunner().invoke(
            app,
            [
                "train",
                "--input",
                str(small_population),
                "--tracking-uri",
                server.tracking_uri,
                "--config",
                str(config),
                "-q",
            ],
        )
        assert trained.exit_code == 0, trained.output
        server.wait("/readyz", timeout=120)
        # Each worker process looks on its own (every readiness_retry_seconds): allow one round.
        deadline, status = time.monotonic() + 60, None
        while status != 200 and time.monotonic() < deadline:
            status = httpx.post(
                server.url + "/score", json=households(1), headers={"Authorization": f"Bearer {key}"}, timeout=60
            ).status_code
            time.sleep(0.5 if status != 200 else 0)
        assert status == 200
        # Another version becomes champion: every worker moves to it without a restart, and no
        # request fails on the way.
        retrained = CliRunner().invoke(
            app, ["train", "--input", str(small_population), "--tracking-uri", server.tracking_uri, "-q"]
        )
        assert retrained.exit_code == 0, retrained.output
        promoted = CliRunner().invoke(
            app,
            [
                "promote",
                "--version",
                "2",
                "--reason",
                "test: the service follows the alias",
                "--tracking-uri",
                server.tracking_uri,
            ],
        )
        assert promoted.exit_code == 0, promoted.output
        deadline, seen = time.monotonic() + 60, []
        while seen[-4:] != ["2"] * 4 and time.monotonic() < deadline:
            r = httpx.post(
                server.url + "/score", json=households(1), headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            assert r.status_code == 200, r.text
            seen.append(r.json()[0]["model_version"])
        assert seen[-4:] == ["2"] * 4, seen
        assert "champion changed: scoring with nonrecours version 2 (was version 1)" in server.log_tail(50_000)
        logged = DecisionLog(
            connect(server.decision_log_url), pseudonym_key(resolve(small_population / "secrets.env", {}))
        ).read()
        assert logged["model_version"].iloc[-1] == "2" and len(logged) == len(seen) + 1
        # A version with the right metadata but a booster that cannot score these features fails
        # its smoke test: never swapped in, version 2 keeps answering, the log says why.
        _register_incompatible(server.tracking_uri)
        promoted = CliRunner().invoke(
            app,
            [
                "promote",
                "--version",
                "3",
                "--reason",
                "test: an incompatible booster",
                "--tracking-uri",
                server.tracking_uri,
            ],
        )
        assert promoted.exit_code == 0, promoted.output
        deadline = time.monotonic() + 180
        while "still scoring with version 2" not in server.log_tail(50_000) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "still scoring with version 2" in server.log_tail(50_000)
        r = httpx.post(
            server.url + "/score", json=households(1), headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        assert r.status_code == 200 and r.json()[0]["model_version"] == "2"
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200


def _register_incompatible(uri: str) -> None:
    """Version 3 of `nonrecours`: version 2's metadata, a booster trained on three columns."""
    import lightgbm as lgb
    import mlflow
    import numpy as np

    client = mlflow.MlflowClient(uri)
    metadata = mlflow.models.get_model_info("models:/nonrecours/2").metadata
    rng = np.random.default_rng(0)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1},
        lgb.Dataset(rng.random((200, 3)), label=rng.random(200) < 0.5),
        num_boost_round=3,
    )
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = mlflow.lightgbm.log_model(booster, name="model", registered_model_name="nonrecours", metadata=metadata)
    assert str(info.registered_model_version) == "3" and client.get_model_version("nonrecours", "3")


@pytest.fixture(scope="module")
def limited(small_population, tracking_store, tmp_path_factory):
    """A server with small configured limits and an injected fault for household 666 (tests only)."""
    from nonrecours.app.environment import FAULT_HOUSEHOLD

    folder = tmp_path_factory.mktemp("limited")
    config = folder / "limits.yaml"
    config.write_text(
        "serving:\n  max_households_per_request: 5\n  max_body_bytes: 100000\n  batch_linger_ms: 300\n  "
        "workers: 1\n  rate_limit_per_minute: 40\n"
    )
    server = ApiProcess(
        tracking_store,
        f"sqlite:///{folder / 'decisions.db'}",
        small_population / "secrets.env",
        folder / "server.log",
        config=config,
        extra_env={FAULT_HOUSEHOLD: "666"},
    )
    with server:
        server.wait()
        yield server


def test_the_configured_request_limit_and_body_limit_apply_before_any_parsing(limited, auth):
    six = httpx.post(limited.url + "/score", json=households(1, 2, 3, 4, 5, 6), headers=auth, timeout=120)
    assert six.status_code == 400 and "households" in six.text  # max_households_per_request: 5, from --config
    assert (
        httpx.post(limited.url + "/score", json=households(1, 2, 3, 4, 5), headers=auth, timeout=120).status_code == 200
    )
    big = b'{"households": [' + b" " * 200_000 + b"]}"
    declared = httpx.post(
        limited.url + "/score", content=big, headers={**auth, "Content-Type": "application/json"}, timeout=60
    )
    assert declared.status_code == 413 and "serving.max_body_bytes" in declared.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(50):
            yield b" " * 10_000

    streamed = httpx.post(
        limited.url + "/score", content=chunks(), headers={**auth, "Content-Type": "application/json"}, timeout=60
    )
    assert streamed.status_code == 413
    assert httpx.get(limited.url + "/readyz", timeout=30).status_code == 200


def test_a_failure_inside_scoring_fails_only_the_request_at_fault(limited, auth):
    """Household 666 makes scoring raise (the test-only hook); requests sharing its simulation
    (a 300 ms linger gathers them) still get their scores."""
    bodies = [households(700 + i) for i in range(4)] + [households(666)]
    with cf.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(
            pool.map(lambda b: httpx.post(limited.url + "/score", json=b, headers=auth, timeout=120), bodies)
        )
    assert [a.status_code for a in answers[:4]] == [200] * 4 and answers[4].status_code == 500
    assert [a.json()[0]["household_id"] for a in answers[:4]] == [700, 701, 702, 703]
    metrics = httpx.get(limited.url + "/metrics", timeout=30).text
    isolated = [
        float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("nonrecours_isolated_batches_total")
    ]
    assert isolated and isolated[0] >= 1  # the fault shared a simulation with good requests, which were re-run alone


def test_one_key_past_its_rate_gets_429_with_retry_after_and_its_id_in_the_log(limited, auth):
    """40 requests a minute per key (the fixture's config): a burst of 60 cheap requests (refused
    outcomes, 400) runs out; the 429s say when to retry; the log names the key's id, never the key."""
    codes = [httpx.post(limited.url + "/outcomes", json={}, headers=auth, timeout=30) for _ in range(60)]
    limited_ = [r for r in codes if r.status_code == 429]
    assert limited_ and {r.status_code for r in codes} <= {400, 429} and int(limited_[0].headers["retry-after"]) >= 1
    assert "serving.rate_limit_per_minute" in limited_[0].json()["error"]
    log = limited.log_tail(50_000)
    key = auth["Authorization"].removeprefix("Bearer ")
    assert "rate limit: key-" in log and key not in log


def test_the_rate_limiter_refills_at_its_rate():
    from nonrecours.serving.access import RateLimiter

    r = RateLimiter(60)  # one a second
    assert all(r.wait("k", now=0.0) == 0 for _ in range(60)) and r.wait("k", now=0.0) == pytest.approx(1.0)
    assert r.wait("k", now=1.0) == 0 and r.wait("other", now=1.0) == 0  # refilled one; another key has its own bucket


class _Proxy:
    """A TCP relay to PostgreSQL that can turn into a black hole: connections accepted, never
    answered, established ones cut (a server that hangs, or a network that drops packets)."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target, self.black_hole, self.open = target_port, False, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            client, _ = self.listener.accept()
            self.open.append(client)
            if self.black_hole:
                continue  # accepted, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass

    def hang(self) -> None:
        import socket

        self.black_hole = True
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def test_a_hung_decision_log_database_gives_503_within_the_timeout_and_readyz_not_ready(
    small_population, tracking_store, postgres_url, tmp_path
):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS nonrecours_timeout")
        conn.exec_driver_sql("CREATE DATABASE nonrecours_timeout")
    admin.dispose()
    proxy = _Proxy(url.port)
    via_proxy = url.set(port=proxy.port, database="nonrecours_timeout").render_as_string(hide_password=False)
    config = tmp_path / "timeout.yaml"
    config.write_text("serving:\n  decision_log_timeout_seconds: 3\n  workers: 1\n")
    server = ApiProcess(
        tracking_store, via_proxy, small_population / "secrets.env", tmp_path / "server.log", config=config
    )
    key = api_keys(resolve(small_population / "secrets.env", {}))[0]
    with server:
        server.wait()
        assert (
            httpx.post(
                server.url + "/score", json=households(1), headers={"Authorization": f"Bearer {key}"}, timeout=60
            ).status_code
            == 200
        )
        proxy.hang()
        start = time.monotonic()
        r = httpx.post(
            server.url + "/score", json=households(2), headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        took = time.monotonic() - start
        assert r.status_code == 503 and took < 30, (
            r.status_code,
            took,
        )  # 3 s timeouts, not PostgreSQL's fifteen minutes
        ready = httpx.get(server.url + "/readyz", timeout=60)
        assert ready.status_code == 503
        assert "decision log write failed (OperationalError)" in server.log_tail(50_000)


def test_an_unchanged_household_is_answered_from_the_law_engines_earlier_answer(api, auth, log):
    """The second request for an unchanged household reuses the first's law-engine answer (the
    response and the log say so) and gives the same scores and reasons; a changed input is
    computed again."""
    body = households(777_001, 777_002)
    first = httpx.post(api.url + "/score", json=body, headers=auth, timeout=120).json()
    second = httpx.post(api.url + "/score", json=body, headers=auth, timeout=120).json()
    assert [h["law_result"] for h in first] == ["computed", "computed"] and [h["law_result"] for h in second] == [
        "reused",
        "reused",
    ]
    assert [h["law_result_at"] for h in second] == [h["scored_at"] for h in first]
    assert [h["scores"] for h in second] == [h["scores"] for h in first]
    changed = copy.deepcopy(body)
    changed["households"][1]["members"][0]["age"] += 1
    third = httpx.post(api.url + "/score", json=changed, headers=auth, timeout=120).json()
    assert [h["law_result"] for h in third] == ["reused", "computed"]
    logged = log.read()
    mine = logged[logged["household_pseudonym"] == pseudonymise(777_001, log.key)]
    assert mine["source"].tolist() == ["api", "api-reused", "api-reused"] and mine["input_digest"].nunique() == 1


@pytest.mark.parametrize(
    ("field", "option", "value"), [("holdout_share", "--holdout", 0.95), ("exploration_share", "--exploration", -0.1)]
)
def test_a_share_the_settings_refuse_is_refused_by_the_command_and_the_api_with_the_same_message(
    api, auth, small_population, tmp_path, field, option, value
):
    """One declaration of a campaign share's range (the ``campaign`` settings): a settings file, the
    command line and ``POST /campaign`` refuse the same value with the same words."""
    from typer.testing import CliRunner

    from nonrecours.app.cli import app
    from nonrecours.core.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as refused:
        load_settings(**{f"campaign__{field}": value})
    said = str(refused.value)
    assert said.startswith(f"campaign.{field}: ") and str(value) in said
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(f"campaign: {{{field}: {value}}}\n")
    with pytest.raises(SettingsError, match=re.escape(said)):
        load_settings(settings_file)
    command = ["campaign", "--input", str(small_population), "--out", str(tmp_path / "c.csv"), option, str(value)]
    by_command = CliRunner().invoke(app, command)
    assert by_command.exit_code == 2 and said in " ".join(by_command.output.split()), by_command.output
    body = {**households(9101, 9102), "capacity": 1, field: value}
    by_api = httpx.post(api.url + "/campaign", json=body, headers=auth, timeout=120)
    assert by_api.status_code == 400 and by_api.json()["error"] == said, by_api.text
