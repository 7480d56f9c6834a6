"""The agents' web page, in process (Starlette's test client over the real application, a real
SQLite decision log, a real campaign and OpenFisca-France's legal basis): sign-in and its
cookie, CSRF, the caseload's ranking, filters and pages, a household's explanation, outcomes
written as ``POST /outcomes`` writes them, and the team boundary. The browser test (real server,
Chromium, axe-core) is tests/test_web_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from starlette.routing import Mount
from starlette.testclient import TestClient

from nonrecours.app.web import RESULTS, SESSION_COOKIE, WEB_PATH, Sources, build_web_app
from nonrecours.core.catalogue import LANGUAGES, catalogue, keys
from nonrecours.core.config import load_settings
from nonrecours.core.schema import BENEFITS
from nonrecours.serving.agents import sessions
from nonrecours.serving.caseload import STATUSES, caseload
from nonrecours.serving.decision_log import outcomes
from tests.conftest import PASSWORD, assigned_campaign

MAX_FAILURES = 3


@pytest.fixture(scope="module")
def site(small_population, tracking_store, tmp_path_factory):
    """The campaign of :func:`tests.conftest.assigned_campaign`, the page mounted at /agents as the
    service mounts it (sign-in locks after three failures, pages of 25)."""
    from starlette.applications import Starlette

    made = assigned_campaign(small_population, tracking_store, tmp_path_factory.mktemp("web"))
    settings = load_settings(serving__signin_max_failures=MAX_FAILURES, web__page_size=25)
    log = made["log"]
    return {**made, "web": Starlette(routes=[Mount(WEB_PATH, build_web_app(settings, Sources(log=lambda: log)))])}


def signed_in(site, name: str, base_url: str = "http://testserver") -> TestClient:
    client = TestClient(site["web"], base_url=base_url)
    form = client.get(f"{WEB_PATH}/connexion")
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
    r = client.post(
        f"{WEB_PATH}/connexion", data={"token": token, "name": name, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"{WEB_PATH}/liste", r.text
    client.last_signin = r  # type: ignore[attr-defined]
    return client


def csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)


def caseload_rows(html: str) -> list[tuple[int, int, int]]:
    """(rank, decision id, household id) per row of a caseload page."""
    return [
        (int(r), int(d), int(h))
        for r, d, h in re.findall(r"<td>(\d+)</td>\s*<td><a href=\"/agents/foyer/(\d+)\"[^>]*>(\d+)</a>", html)
    ]


def test_signing_in_sets_an_httponly_samesite_session_cookie_secure_behind_tls_whose_token_is_stored_hashed(site):
    plain = signed_in(site, "alice").last_signin.headers["set-cookie"]
    assert (
        f"{SESSION_COOKIE}=" in plain
        and "HttpOnly" in plain
        and "SameSite=lax" in plain
        and f"Path={WEB_PATH}" in plain
        and "Secure" not in plain
    )
    assert "Secure" in signed_in(site, "alice", base_url="https://testserver").last_signin.headers["set-cookie"]
    behind_proxy = TestClient(site["web"]).get(
        f"{WEB_PATH}/connexion", headers={"X-Forwarded-Proto": "https"}
    )  # TLS ended at a proxy
    assert "Secure" in behind_proxy.headers["set-cookie"]
    token = re.search(rf"{SESSION_COOKIE}=([^;]+)", plain).group(1)
    with site["log"].engine.connect() as conn:
        stored = conn.execute(select(sessions.c.token_hash)).scalars().all()
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account_against_the_right_one_too(site):
    client = TestClient(site["web"])
    for attempt in range(MAX_FAILURES + 1):
        token = re.search(r'name="token" value="([^"]+)"', client.get(f"{WEB_PATH}/connexion").text).group(1)
        password = PASSWORD if attempt == MAX_FAILURES else f"faux {attempt} ......"
        r = client.post(
            f"{WEB_PATH}/connexion",
            data={"token": token, "name": "carol", "password": password},
            follow_redirects=False,
        )
        assert r.status_code == 403
    assert "compte bloqué" in r.text and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_forms_without_their_token_are_refused_and_record_nothing(site):
    client = TestClient(site["web"])
    r = client.post(f"{WEB_PATH}/connexion", data={"name": "alice", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 400 and "expiré" in r.text
    alice = signed_in(site, "alice")
    first = caseload_rows(alice.get(f"{WEB_PATH}/liste").text)[0]
    before = _outcomes(site)
    r = alice.post(
        f"{WEB_PATH}/foyer/{first[1]}/resultat", data={"benefit": "rsa", "result": "declined", "csrf": "not-the-token"}
    )
    assert r.status_code == 403 and len(_outcomes(site)) == len(before)


def test_the_caseload_ranks_the_campaigns_contacted_households_never_its_holdout(site):
    alice = signed_in(site, "alice")
    rows = []
    for number in range(1, 10):
        page = alice.get(f"{WEB_PATH}/liste", params={"page": number})
        assert (
            page.status_code == 200
            and page.headers["cache-control"] == "no-store"
            and "default-src 'none'" in page.headers["content-security-policy"]
        )
        rows += caseload_rows(page.text)
        if 'rel="next"' not in page.text:
            break
    campaign = site["campaign"]
    contacted = campaign[campaign["contacted"]]
    assert len(rows) == len(contacted) and len(rows) > 25  # several pages of web.page_size 25
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert {r[2] for r in rows} == set(contacted["household_id"])
    assert not {r[2] for r in rows} & set(campaign.loc[campaign["arm"] == "holdout", "household_id"])


def test_filters_by_benefit_territory_and_status_and_a_bad_filter_says_what_to_fix(site):
    alice = signed_in(site, "alice")
    with site["log"].engine.connect() as conn:
        assigned = pd.DataFrame(
            conn.execute(select(caseload.c.decision_id, caseload.c.benefits, caseload.c.territory)).mappings().all()
        )
    for benefit in ("rsa", "aide_logement"):
        shown = {r[1] for r in caseload_rows(alice.get(f"{WEB_PATH}/liste", params={"benefit": benefit}).text)}
        expected = set(assigned.loc[assigned["benefits"].str.contains(f";{benefit};"), "decision_id"])
        assert shown and shown <= expected and len(shown) == min(len(expected), 25)
    territory = assigned["territory"].mode()[0]
    shown = {r[1] for r in caseload_rows(alice.get(f"{WEB_PATH}/liste", params={"territory": territory}).text)}
    assert shown and shown <= set(assigned.loc[assigned["territory"] == territory, "decision_id"])
    bad = alice.get(f"{WEB_PATH}/liste", params={"benefit": "fraude"})
    assert bad.status_code == 400 and "benefit" in bad.text and "rsa" in bad.text


def _outcomes(site) -> pd.DataFrame:
    with site["log"].engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(outcomes)).mappings().all())


def test_an_outcome_is_written_as_post_outcomes_writes_it_with_the_agents_id_and_corrected_by_a_new_entry(site):
    alice = signed_in(site, "alice")
    rank, decision, household = caseload_rows(alice.get(f"{WEB_PATH}/liste").text)[1]
    page = alice.get(f"{WEB_PATH}/foyer/{decision}")
    benefit = re.search(r'name="benefit" value="([a-z_]+)"', page.text).group(1)
    token = csrf(page.text)
    r = alice.post(
        f"{WEB_PATH}/foyer/{decision}/resultat",
        data={"csrf": token, "benefit": benefit, "result": "opened", "amount": "250", "submission": "s-1-opened"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"{WEB_PATH}/foyer/{decision}?ok=1"
    # the same submission again (a double click): recorded once
    alice.post(
        f"{WEB_PATH}/foyer/{decision}/resultat",
        data={"csrf": token, "benefit": benefit, "result": "opened", "amount": "250", "submission": "s-1-opened"},
    )
    alice.post(
        f"{WEB_PATH}/foyer/{decision}/resultat",
        data={"csrf": token, "benefit": benefit, "result": "declined", "submission": "s-2-declined"},
    )
    mine = _outcomes(site)
    mine = mine[mine["decision_id"] == decision].sort_values("id")
    assert list(mine["result"]) == ["opened", "declined"]
    first = mine.iloc[0]
    assert (
        first["sender"] == f"agent-{site['alice'].id}"
        and first["amount_granted"] == 250
        and first["claimed"]
        and first["benefit"] == benefit
    )
    assert (
        first["household_pseudonym"] in site["log"].pseudonyms(household)
        and first["campaign_id"] == site["campaign"]["campaign_id"].iloc[0]
    )
    after = alice.get(f"{WEB_PATH}/foyer/{decision}?ok=1").text
    assert (
        "Résultat enregistré" in after
        and "Refus du foyer" in after
        and "Droit ouvert" in after
        and "250,00\u00a0€" in after
    )
    declined = caseload_rows(alice.get(f"{WEB_PATH}/liste", params={"status": "declined"}).text)
    assert (rank, decision, household) in declined and all(
        r[1] != decision for r in caseload_rows(alice.get(f"{WEB_PATH}/liste", params={"status": "todo"}).text)
    )


def test_an_agent_of_another_team_gets_403_on_the_household_and_its_form(site):
    alice, bob = signed_in(site, "alice"), signed_in(site, "bob")
    decision = caseload_rows(alice.get(f"{WEB_PATH}/liste").text)[0][1]
    assert "Aucune campagne" in bob.get(f"{WEB_PATH}/liste").text
    assert bob.get(f"{WEB_PATH}/foyer/{decision}").status_code == 403
    before = len(_outcomes(site))
    token = csrf(bob.get(f"{WEB_PATH}/liste").text)
    assert (
        bob.post(
            f"{WEB_PATH}/foyer/{decision}/resultat", data={"csrf": token, "benefit": "rsa", "result": "declined"}
        ).status_code
        == 403
    )
    assert len(_outcomes(site)) == before
    assert (
        TestClient(site["web"]).get(f"{WEB_PATH}/foyer/{decision}", follow_redirects=False).headers["location"]
        == f"{WEB_PATH}/connexion"
    )


def test_a_households_page_gives_reasons_the_law_engines_legal_basis_texts_documents_and_the_notice(
    site, small_population
):
    from nonrecours.core.io import read_table
    from nonrecours.core.schema import ENTITLEMENTS

    alice = signed_in(site, "alice")
    _rank, decision, household = caseload_rows(alice.get(f"{WEB_PATH}/liste").text)[0]
    html = alice.get(f"{WEB_PATH}/foyer/{decision}").text
    t = catalogue("fr")
    assert (
        t("household.title", household=household) in html
        and "jamais une décision" in html
        and f'href="{WEB_PATH}/notice"' in html
    )
    first_benefit = re.search(r'name="benefit" value="([a-z_]+)"', html).group(1)
    assert (
        "Paramètres de la loi en vigueur" in html and "Décret" in html
    )  # the text that set the amounts, in force that month
    assert (
        "Base légale" in html
        and "legifrance.gouv.fr" in html
        and t.raw(f"documents.{first_benefit}")[0].replace("'", "&#39;") in html
    )
    with site["log"].engine.connect() as conn:
        basis = conn.execute(select(caseload.c.basis).where(caseload.c.decision_id == decision)).scalar_one()
    entitled = read_table(small_population, ENTITLEMENTS)
    entitled = entitled[entitled["household_id"] == household].set_index("benefit")["monthly_amount"]
    for benefit in ("rsa", "ppa", "aide_logement", "aspa", "af", "aah"):
        computed = next(f["value"] for f in basis[benefit]["figures"] if f["role"] == "amount")
        assert computed == pytest.approx(float(entitled[benefit]), abs=0.01), (
            benefit
        )  # the same law engine, the same answer
    assert f"{WEB_PATH}/foyer/{decision}/resultat" in html and all(t(f"result_button.{r}") in html for r in RESULTS)


def test_signing_out_ends_the_session(site):
    alice = signed_in(site, "alice")
    token = csrf(alice.get(f"{WEB_PATH}/liste").text)
    assert alice.post(f"{WEB_PATH}/deconnexion", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert alice.get(f"{WEB_PATH}/liste", follow_redirects=False).headers["location"] == f"{WEB_PATH}/connexion"


def test_the_page_logs_no_raw_household_id(site, caplog):
    alice = signed_in(site, "alice")
    rows = caseload_rows(alice.get(f"{WEB_PATH}/liste").text)
    with caplog.at_level("INFO", logger="nonrecours.web"):
        for _rank, decision, _household in rows[:5]:
            page = alice.get(f"{WEB_PATH}/foyer/{decision}")
            alice.post(
                f"{WEB_PATH}/foyer/{decision}/resultat",
                data={
                    "csrf": csrf(page.text),
                    "benefit": re.search(r'name="benefit" value="([a-z_]+)"', page.text).group(1),
                    "result": "unreachable",
                },
            )
        signed_in(site, "bob").get(f"{WEB_PATH}/foyer/{rows[0][1]}")
    messages = [r.getMessage() for r in caplog.records]
    assert any("recorded an outcome" in m for m in messages) and any("refused" in m for m in messages)
    ids = {str(h) for _, d, h in rows[:5] if str(h) not in {str(d) for _, d, _ in rows}}
    assert not [m for m in messages for i in ids if re.search(rf"\b{i}\b", m)]


def test_every_message_is_in_both_catalogues_and_every_key_the_templates_use_exists():
    fr, en = (keys(catalogue(lang).messages) for lang in LANGUAGES)
    assert fr == en
    templates = Path(__file__).parents[1] / "app" / "nonrecours" / "app" / "templates"
    used = {
        k for f in templates.glob("*.html") for k in re.findall(r"""\bt(?:\.raw)?\(["']([a-z_.]+)["']""", f.read_text())
    }
    literal, prefixes = {k for k in used if not k.endswith(".")}, {k for k in used if k.endswith(".")}
    assert (
        literal
        and literal <= fr
        and prefixes
        == {"benefit.", "benefit_short.", "status.", "result_button.", "basis_role.", "documents.", "caseload."}
    )
    for prefix, names in (
        ("benefit", BENEFITS),
        ("benefit_short", BENEFITS),
        ("status", STATUSES),
        ("result_button", RESULTS),
        ("documents", BENEFITS),
    ):
        for lang in LANGUAGES:
            assert all(catalogue(lang).raw(f"{prefix}.{n}") for n in names)
    assert {
        f"caseload.{name}" for name in ("benefit", "territory", "status")
    } <= fr  # the filters' labels (the template's choice macro)
    # a YAML flow list splits at every comma, parentheses or not: each document is whole
    assert all(
        d.count("(") == d.count(")")
        for lang in LANGUAGES
        for b in BENEFITS
        for d in catalogue(lang).raw(f"documents.{b}")
    )


def test_the_english_setting_turns_the_page_english(site):
    from starlette.applications import Starlette

    english = Starlette(
        routes=[Mount(WEB_PATH, build_web_app(load_settings(serving__language="en"), Sources(log=lambda: site["log"])))]
    )
    page = TestClient(english).get(f"{WEB_PATH}/connexion")
    assert '<html lang="en">' in page.text and "Agents&#39; sign-in" in page.text


def test_the_pipeline_gives_its_newest_campaign_to_a_demo_agent_whose_password_file_is_private(small_population):
    import stat
    from datetime import timedelta

    from nonrecours.serving.agents import sign_in
    from nonrecours.serving.caseload import campaigns
    from nonrecours.serving.decision_log import connect

    stored = small_population / "demo-agent.txt"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    name, password = stored.read_text().split()
    engine = connect(f"sqlite:///{small_population / 'decisions.db'}")
    try:
        assert sign_in(engine, name, password, max_failures=5, lockout=timedelta(minutes=15)) is not None
        newest = small_population / "loop" / "round-3" / "campaign.csv"  # the demo loop's last round
        assert campaigns(engine, "demo") == [pd.read_csv(newest)["campaign_id"].iloc[0]]
    finally:
        engine.dispose()


def test_amounts_and_probabilities_are_written_as_each_language_writes_them():
    fr, en = catalogue("fr"), catalogue("en")
    assert fr.euros(1033.32, 2) == "1\u202f033,32\u00a0€" and en.euros(1033.32, 2) == "1,033.32\u00a0€"
    assert fr.euros(612.4) == "612\u00a0€" and fr.euros(None) == "—"
    assert fr.percent(0.413) == "41\u00a0%" and en.percent(0.413) == "41%"


def test_a_decision_log_that_cannot_be_reached_gives_a_503_page_not_a_crash():
    from starlette.applications import Starlette

    def unreachable():
        raise ConnectionError("the database is down")

    web = Starlette(routes=[Mount(WEB_PATH, build_web_app(load_settings(), Sources(log=unreachable)))])
    client = TestClient(web, raise_server_exceptions=False)
    form = client.get(f"{WEB_PATH}/connexion")
    assert form.status_code == 200  # the form needs no database
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
    r = client.post(f"{WEB_PATH}/connexion", data={"token": token, "name": "alice", "password": PASSWORD})
    assert (
        r.status_code == 503
        and "journal des décisions est indisponible" in r.text
        and "default-src 'none'" in r.headers["content-security-policy"]
    )


def test_a_body_past_the_forms_limit_is_refused_before_parsing(site):
    from nonrecours.app.web import MAX_FORM_BYTES

    client = TestClient(site["web"])
    declared = client.post(
        f"{WEB_PATH}/connexion",
        content=b"name=" + b"a" * (MAX_FORM_BYTES + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert declared.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"a" * (MAX_FORM_BYTES // 4)

    streamed = client.post(
        f"{WEB_PATH}/connexion", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413 and "default-src 'none'" in streamed.headers["content-security-policy"]
    assert client.get(f"{WEB_PATH}/connexion").status_code == 200  # and the page still serves
