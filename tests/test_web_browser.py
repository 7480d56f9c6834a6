"""The agents' web page in a real browser against a real server: ``nonrecours serve`` (BentoML,
the page mounted beside the API), Debian's Chromium driven by Playwright (no browser download:
``executable_path``), axe-core on every page. Each step's screenshot is kept in
``build/test-artifacts/web/`` (or ``$NONRECOURS_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from bench.harness import ApiProcess
from nonrecours.serving.decision_log import outcomes
from tests.conftest import PASSWORD, assigned_campaign

pytestmark = pytest.mark.slow
ARTIFACTS = (
    Path(os.environ.get("NONRECOURS_TEST_ARTIFACTS", Path(__file__).parents[1] / "build" / "test-artifacts")) / "web"
)
SERIOUS = {"serious", "critical"}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        (pytest.fail if os.environ.get("NONRECOURS_REQUIRE_CHROMIUM") else pytest.skip)(
            "Chromium is not installed (`apt-get install chromium`; .ci/run does it)"
        )
    return found


@pytest.fixture(scope="module")
def served(small_population, tracking_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-browser")
    made = assigned_campaign(small_population, tracking_store, folder)
    server = ApiProcess(tracking_store, made["url"], small_population / "secrets.env", folder / "server.log")
    with server:
        server.wait()
        yield {**made, "server": server}


class Steps:
    """The browser's page, a screenshot per step, and axe-core's serious or critical violations."""

    def __init__(self, page):
        from axe_playwright_python.sync_playwright import Axe

        self.page, self.axe, self.n = page, Axe(), 0
        self.violations: dict[str, list] = {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str, *, check: bool = True, full_page: bool = False) -> None:
        from playwright.sync_api import Error

        self.n += 1
        self.page.wait_for_selector("main")
        for attempt in range(3):  # Chromium now and then refuses a first capture, then takes it
            try:
                self.page.screenshot(path=str(ARTIFACTS / f"{self.n:02d}-{name}.png"), full_page=full_page)
                break
            except Error:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        if check:
            found = self.axe.run(self.page).response["violations"]
            self.violations[name] = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found if v["impact"] in SERIOUS
            ]


def test_an_agent_signs_in_filters_opens_a_household_and_records_a_right_opened_that_another_team_cannot_see(
    served, chromium
):
    from playwright.sync_api import sync_playwright

    base = served["server"].url + "/agents"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
            steps = Steps(page)
            page.goto(base + "/")
            assert page.url.endswith("/agents/connexion")
            steps.shot("connexion")
            page.fill("#name", "alice")
            page.fill("#password", PASSWORD)
            page.click("main button[type=submit]")
            assert page.url.endswith("/agents/liste")
            cookie = next(c for c in page.context.cookies() if c["name"] == "nonrecours_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            steps.shot("liste")
            assert page.locator("tbody tr").count() == 50  # a full first page (web.page_size)

            page.select_option("#benefit", "aide_logement")
            page.click("form[role=search] button[type=submit]")
            assert "benefit=aide_logement" in page.url
            rows = page.locator("tbody tr")
            assert rows.count() > 0 and all(
                "Aides au logement" in rows.nth(i).inner_text() for i in range(rows.count())
            )
            steps.shot("liste-filtree")

            rows.first.locator("a").click()
            assert "/agents/foyer/" in page.url
            decision = int(page.url.rsplit("/", 1)[1])
            assert (
                page.get_by_text("Base légale").first.is_visible()
                and page.get_by_text("jamais une décision").first.is_visible()
            )
            steps.shot("foyer", full_page=True)

            details = page.locator("details", has=page.locator("input[name=benefit][value=aide_logement]"))
            if details.get_attribute("open") is None:  # each benefit but the first is folded
                details.locator("summary").click()
            form = details.locator("form")
            form.locator("input[name=amount]").fill("250")
            form.get_by_role("button", name="Droit ouvert").click()
            assert page.url.endswith(f"/agents/foyer/{decision}?ok=1")
            assert page.get_by_text("Résultat enregistré").is_visible()
            steps.shot("resultat-enregistre")

            with served["log"].engine.connect() as conn:
                recorded = pd.DataFrame(
                    conn.execute(select(outcomes).where(outcomes.c.decision_id == decision)).mappings().all()
                )
            assert len(recorded) == 1
            row = recorded.iloc[0]
            assert (row["sender"], row["result"], row["benefit"], row["amount_granted"]) == (
                f"agent-{served['alice'].id}",
                "opened",
                "aide_logement",
                250.0,
            )

            other = browser.new_page(viewport={"width": 1280, "height": 900})
            steps_bob = Steps(other)
            steps_bob.n = steps.n
            other.goto(base + "/connexion")
            other.fill("#name", "bob")
            other.fill("#password", PASSWORD)
            other.click("main button[type=submit]")
            response = other.goto(f"{base}/foyer/{decision}")
            assert response is not None and response.status == 403
            steps_bob.shot("autre-equipe-403")
            steps.n = steps_bob.n

            page.goto(base + "/notice")
            steps.shot("notice")
        finally:
            browser.close()
    violations = {**steps.violations, **steps_bob.violations}
    assert set(violations) == {
        "connexion",
        "liste",
        "liste-filtree",
        "foyer",
        "resultat-enregistre",
        "autre-equipe-403",
        "notice",
    }
    assert not any(violations.values()), violations
    assert len(list(ARTIFACTS.glob("*.png"))) >= len(violations)
