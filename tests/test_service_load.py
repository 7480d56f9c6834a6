"""The scoring API under fuzzing, load and a crash (slow tier: a few minutes; .ci/run runs it)."""

from __future__ import annotations

import time

import httpx
import pytest

from bench.harness import ApiProcess, Clients
from nonrecours.serving.decision_log import DecisionLog, connect, pseudonymise
from nonrecours.serving.request import from_tables
from nonrecours.serving.secrets import api_keys, pseudonym_key, resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bodies(tables):
    """Real households of the small population, as request bodies."""
    return from_tables(tables["individuals"], tables["households"])


@pytest.fixture(scope="module")
def secrets_file(small_population):
    return small_population / "secrets.env"


def _server(folder, tracking_store, secrets_file) -> ApiProcess:
    return ApiProcess(tracking_store, f"sqlite:///{folder / 'decisions.db'}", secrets_file, folder / "server.log")


def _auth(secrets_file) -> dict:
    return {"Authorization": f"Bearer {api_keys(resolve(secrets_file, {}))[0]}"}


def test_fuzzing_score_campaign_and_outcomes_from_the_openapi_document_gives_no_5xx(
    small_population, tracking_store, secrets_file, tmp_path
):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    with _server(tmp_path, tracking_store, secrets_file) as server:
        server.wait()
        schema = schemathesis.openapi.from_url(server.url + "/docs.json")
        headers = _auth(secrets_file)
        seen: dict[str, list[int]] = {"/score": [], "/campaign": [], "/outcomes": []}
        for path, mode, examples in [
            ("/score", GenerationMode.NEGATIVE, 60),
            ("/score", GenerationMode.POSITIVE, 15),
            ("/campaign", GenerationMode.NEGATIVE, 40),
            ("/campaign", GenerationMode.POSITIVE, 15),
            ("/outcomes", GenerationMode.NEGATIVE, 60),
            ("/outcomes", GenerationMode.POSITIVE, 150),
        ]:
            operation = schema[path]["POST"]

            @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=server.url, headers=headers, timeout=300)
                seen[path].append(response.status_code)  # noqa: B023 - check() runs within this iteration
                assert response.status_code < 500, (
                    f"{case.as_curl_command()}\n-> {response.status_code} {response.text[:500]}"
                )

            check()
        # Requests were really judged: refused ones, and outcomes that got past validation to the
        # log (404: that household was never scored). Few generated outcomes pass the rules the
        # schema cannot say (result or contacted, a date not in the future): hence 150 of them.
        assert (
            400 in seen["/score"]
            and 400 in seen["/campaign"]
            and 400 in seen["/outcomes"]
            and {200, 404} & set(seen["/outcomes"])
        )
        # the corpus beside the generated cases: Unicode digits in every pattern-checked field, an oversized body
        from nonrecours.serving.request import example_households
        from tests.test_request import UNICODE_DIGITS

        for digits in UNICODE_DIGITS.values():
            household = {**example_households()[0], "depcom": digits}
            r = httpx.post(server.url + "/score", json={"households": [household]}, headers=headers, timeout=300)
            assert r.status_code == 400 and "depcom" in r.json()["detail"], r.text[:300]
            outcome = {
                "household_id": 1,
                "benefit": "rsa",
                "result": "declined",
                "outcome_date": "2026-01-02",
                "campaign_id": digits,
            }
            r = httpx.post(server.url + "/outcomes", json=outcome, headers=headers, timeout=60)
            assert r.status_code == 400 and "campaign_id" in r.json()["detail"], r.text[:300]
        huge = (
            b'{"households": [' + b'{"household_id": 1},' * 1_000_000 + b'{"household_id": 2}]}'
        )  # 20 MB, over serving.max_body_bytes
        r = httpx.post(
            server.url + "/score", content=huge, headers={**headers, "Content-Type": "application/json"}, timeout=120
        )
        assert r.status_code == 413 and "serving.max_body_bytes" in r.json()["error"]
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200


def test_schemathesis_with_every_check_finds_no_failure(tracking_store, secrets_file, tmp_path):
    """`schemathesis run --checks all` (seed 99) on the running service: no 5xx, every answer in
    the shape and with a status the document declares, schema-violating requests refused,
    schema-valid ones accepted but for the rules described on the 400 responses
    (tests/schemathesis.toml). The rate limit is raised so that the fuzzer reaches the logic."""
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "config.yaml"
    config.write_text("serving:\n  rate_limit_per_minute: 1000000\n")
    server = _server(tmp_path, tracking_store, secrets_file)
    server.config = config
    key = api_keys(resolve(secrets_file, {}))[0]
    with server:
        server.wait()
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(Path(__file__).parent / "schemathesis.toml"),
                "run",
                server.url + "/docs.json",
                "--checks",
                "all",
                "--seed",
                "99",
                "-H",
                f"Authorization: Bearer {key}",
                "--max-failures",
                "20",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=tmp_path,
        )
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-6000:]
    assert "passed" in summary and "failure" not in summary.split("Test cases:")[-1], summary


def test_sixteen_clients_for_a_minute_no_errors_and_one_log_row_per_household(
    tracking_store, secrets_file, bodies, tmp_path
):
    with _server(tmp_path, tracking_store, secrets_file) as server:
        server.wait()
        clients = Clients(server.url, _auth(secrets_file), bodies, n=16, first_id=50_000_000)
        clients.run_for(60)
        assert clients.errors == []
        assert len(clients.acked) >= 100, len(clients.acked)  # batching: far more than one per second
        log = DecisionLog(connect(server.decision_log_url), pseudonym_key(resolve(secrets_file, {})))
        logged = log.read()
    counts = logged["household_pseudonym"].value_counts()
    acked = {pseudonymise(h, log.key) for h in clients.acked}
    assert set(counts.index) >= acked and all(counts[p] == 1 for p in acked)
    # Requests cut short by the end of the test may be logged without their answer being read,
    # never the other way round.
    assert len(logged) - len(acked) <= clients.n


def test_a_crash_under_load_loses_no_acknowledged_decision(tracking_store, secrets_file, bodies, tmp_path):
    server = _server(tmp_path, tracking_store, secrets_file)
    server.start()
    try:
        server.wait()
        clients = Clients(
            server.url, _auth(secrets_file), bodies, n=8, first_id=60_000_000, retry_connection_errors=True
        )
        clients.start()
        time.sleep(15)
        before = len(clients.acked)
        server.kill()  # SIGKILL to the server and all its workers, with requests in flight
        with pytest.raises(httpx.ConnectError):  # nothing left answering: the crash was whole
            httpx.get(server.url + "/livez", timeout=5)
        server.start()
        server.wait()
        time.sleep(10)
        clients.finish()
        assert before > 0 and len(clients.acked) > before, "no traffic on both sides of the crash"
        assert clients.errors == []
        log = DecisionLog(connect(server.decision_log_url), pseudonym_key(resolve(secrets_file, {})))
        logged = set(log.read()["household_pseudonym"])
        missing = [h for h in clients.acked if pseudonymise(h, log.key) not in logged]
        assert missing == []
    finally:
        server.kill()


def test_the_bento_carries_the_runtime_lock_only_and_serves_the_example(tracking_store, secrets_file, tmp_path):
    """scripts/build_bento.sh builds the project's wheel and the Bento of bentofile.yaml;
    `bentoml serve` of that Bento, given the service's environment, loads the champion and
    scores the shipped example households."""
    import subprocess
    import zipfile
    from pathlib import Path

    from nonrecours.serving.request import example_households

    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    built = subprocess.run(
        ["bash", str(root / "scripts" / "build_bento.sh")], capture_output=True, text=True, env=env, timeout=600
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1]
    assert tag.startswith("nonrecours-scoring:")
    bento = tmp_path / "bentoml" / "bentos" / "nonrecours-scoring" / tag.split(":")[1]
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "openfisca-france==" in requirements and "--hash=sha256:" in requirements
    assert not any(f"\n{tool}==" in requirements for tool in ("schemathesis", "hypothesis", "import-linter"))
    (wheel,) = (bento / "env" / "python" / "wheels").glob("nonrecours-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "nonrecours/app/bento.py" in shipped and "nonrecours/law/parameters.yaml" in shipped
    assert not any("api_process" in n or n.startswith("tests/") for n in shipped)
    server = ApiProcess(
        tracking_store,
        f"sqlite:///{tmp_path / 'decisions.db'}",
        secrets_file,
        tmp_path / "bento.log",
        bento=tag,
        extra_env={"BENTOML_HOME": str(tmp_path / "bentoml")},
    )
    with server:
        server.wait()
        answer = httpx.post(
            server.url + "/score", json={"households": example_households()}, headers=_auth(secrets_file), timeout=300
        )
    assert answer.status_code == 200, answer.text[:500]
    scored = answer.json()
    assert [h["household_id"] for h in scored] == [h["household_id"] for h in example_households()]
    assert all(
        h["model_name"] == "nonrecours"
        and len(h["scores"]) == 8
        and all(0 <= s["p_unclaimed"] <= 1 for s in h["scores"])
        for h in scored
    )
