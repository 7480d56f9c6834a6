"""The agents' web page: sign in, the team's caseload, a household's explanation, and an outcome
recorded with one click. Server-rendered HTML (Jinja2), no JavaScript, in French by default.

Where it sits: a Starlette application that :func:`nonrecours.app.service.build_service` mounts on
the BentoML service at :data:`WEB_PATH` (same process, same port as the API). The API-key gate lets
this path through: the page has its own accounts (:mod:`nonrecours.serving.agents`), and no API key
ever reaches a browser. It reads the caseload (:mod:`nonrecours.serving.caseload`) and writes
outcomes through :meth:`DecisionLog.record_outcomes` with the request model of ``POST /outcomes``
(:class:`nonrecours.serving.request.OutcomeIn`), the agent's id as sender.

Security: a session is a random token in a cookie (HttpOnly, SameSite=Lax, Secure behind TLS, path
limited to the page), of which the database keeps a hash; every form carries the session's CSRF
token (the sign-in form a double-submit one); pages are sent with a strict Content-Security-Policy
and ``Cache-Control: no-store``. URLs name a household by its decision id, never by its own id, so
access logs hold no raw id. Sign-in failures lock the account (``serving.signin_max_failures``, ``serving.signin_lockout_minutes``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

from nonrecours.app.asgi import read_body, replay
from nonrecours.core.config import Settings

logger = logging.getLogger("nonrecours.web")

WEB_PATH = "/agents"
SESSION_COOKIE = "nonrecours_session"
SIGNIN_COOKIE = "nonrecours_signin"
RESULTS = ("reached", "unreachable", "opened", "not_entitled", "declined")
"""The buttons of a household's page: ``reached`` records a contact without result yet (the API's
``contacted: true``); the others are campaign results (``OUTREACH_RESULTS``)."""
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
NO_STORE = {"cache-control": "no-store"}
HTTP_SEE_OTHER, HTTP_BAD_REQUEST, HTTP_FORBIDDEN, HTTP_NOT_FOUND, HTTP_TOO_LARGE, HTTP_UNAVAILABLE = 303, 400, 403, 404, 413, 503
FORM_TOKEN_BYTES = 24
BENEFITS_PER_ROW = 3
"""Benefits a caseload row shows (the largest expected amounts first); the household's page has them all."""


@dataclass
class Sources:
    """What the page reads, given by whoever mounts it: the decision log (its engine holds the
    agents' and caseload tables) and the champion serving, for the notice (or None)."""

    log: Callable[[], object]
    champion: Callable[[], object | None] = lambda: None


MAX_FORM_BYTES = 16_384
"""Largest body the page reads: its forms post a few short fields (the API-key gate, which bounds
the API's bodies, lets the page through)."""


class SecurityHeaders:
    """Pure ASGI middleware: the page's security headers on every response, and 413 for a body
    over :data:`MAX_FORM_BYTES` (declared, or counted as it arrives) before any parsing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(scope, receive, MAX_FORM_BYTES)
        if body is None:
            await _too_large(send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, replay(body), with_headers)


async def _too_large(send) -> None:
    await send({"type": "http.response.start", "status": HTTP_TOO_LARGE, "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": f"form over {MAX_FORM_BYTES:,} bytes".encode()})


def build_web_app(settings: Settings, sources: Sources):
    """The page as a Starlette application (mount it at :data:`WEB_PATH`)."""
    from importlib import resources

    from jinja2 import Environment, PackageLoader, select_autoescape
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from nonrecours.core.catalogue import catalogue

    language = settings.serving.language
    templates = Environment(loader=PackageLoader("nonrecours.app", "templates"), autoescape=select_autoescape(["html"]))
    words = catalogue(language)
    templates.filters["euros"] = words.euros
    templates.filters["percent"] = words.percent
    page = _Page(settings, sources, templates, words)
    static = StaticFiles(directory=str(resources.files("nonrecours.app").joinpath("static")))
    routes = [
        Route("/", page.home),
        Route("/connexion", page.signin_form, methods=["GET"]),
        Route("/connexion", page.signin, methods=["POST"]),
        Route("/deconnexion", page.signout, methods=["POST"]),
        Route("/liste", page.caseload),
        Route("/foyer/{decision_id:int}", page.household),
        Route("/foyer/{decision_id:int}/resultat", page.record, methods=["POST"]),
        Route("/notice", page.notice),
        Mount("/static", static, name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: page.failure, HTTP_NOT_FOUND: page.missing})
    return SecurityHeaders(app)


class _Page:
    def __init__(self, settings: Settings, sources: Sources, templates, messages):
        self.settings = settings
        self.sources = sources
        self.templates = templates
        self.t = messages

    # -- plumbing -------------------------------------------------------------------------
    def _engine(self):
        return self.sources.log().engine  # type: ignore[attr-defined]

    @staticmethod
    def _base(request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def _secure(self, request) -> bool:
        if self.settings.web.secure_cookies == "always":
            return True
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return request.url.scheme == "https" or forwarded == "https"

    def _render(self, request, name: str, status: int = 200, **context):
        from starlette.responses import HTMLResponse

        base = self._base(request)
        html = self.templates.get_template(name).render(t=self.t, base=base, lang=self.t.language, **context)
        return HTMLResponse(html, status_code=status, headers=NO_STORE)

    def _redirect(self, request, path: str):
        from starlette.responses import RedirectResponse

        return RedirectResponse(self._base(request) + path, status_code=HTTP_SEE_OTHER, headers=NO_STORE)

    async def _session(self, request):
        from starlette.concurrency import run_in_threadpool

        from nonrecours.serving.agents import session_of

        token = request.cookies.get(SESSION_COOKIE)
        return await run_in_threadpool(session_of, self._engine(), token) if token else None

    def _error(self, request, status: int, message: str, session=None):
        return self._render(request, "error.html", status=status, message=message, session=session)

    async def failure(self, request, exc: Exception):
        # the type only: a message may quote a form's values
        logger.error("web page %s failed: %s", request.url.path, type(exc).__name__)
        return self._error(request, HTTP_UNAVAILABLE, self.t("error.unavailable"))

    async def missing(self, request, exc: Exception):
        return self._error(request, HTTP_NOT_FOUND, self.t("error.not_found"))

    async def _form(self, request, session) -> dict | None:
        """The posted form if its CSRF token is the session's, else None."""
        form = dict(await request.form())
        given = str(form.get("csrf", ""))
        if session is None or not given or not secrets.compare_digest(given, session.csrf):
            return None
        return form

    # -- sign-in --------------------------------------------------------------------------
    async def home(self, request):
        return self._redirect(request, "/liste" if await self._session(request) else "/connexion")

    def _signin_page(self, request, status: int = 200, message: str | None = None):
        token = secrets.token_urlsafe(FORM_TOKEN_BYTES)
        response = self._render(request, "signin.html", status=status, token=token, message=message, session=None)
        response.set_cookie(SIGNIN_COOKIE, token, httponly=True, samesite="strict", secure=self._secure(request), path=self._base(request) or "/")
        return response

    async def signin_form(self, request):
        return self._signin_page(request)

    async def signin(self, request):
        from starlette.concurrency import run_in_threadpool

        from nonrecours.serving.agents import LockedOut, open_session, sign_in

        form = dict(await request.form())
        cookie, given = request.cookies.get(SIGNIN_COOKIE, ""), str(form.get("token", ""))
        if not cookie or not given or not secrets.compare_digest(cookie, given):
            return self._signin_page(request, HTTP_BAD_REQUEST, self.t("signin.expired"))
        s = self.settings.serving
        engine = self._engine()
        try:
            agent = await run_in_threadpool(partial(sign_in, engine, str(form.get("name", "")), str(form.get("password", "")),
                                                    max_failures=s.signin_max_failures, lockout=timedelta(minutes=s.signin_lockout_minutes)))
        except LockedOut as exc:
            logger.warning("web sign-in refused: account locked")
            return self._signin_page(request, HTTP_FORBIDDEN, self.t("signin.locked", until=f"{exc.until:%H:%M}"))
        if agent is None:
            logger.warning("web sign-in failed")
            return self._signin_page(request, HTTP_FORBIDDEN, self.t("signin.failed"))
        lifetime = timedelta(hours=self.settings.web.session_hours)
        token, _ = await run_in_threadpool(partial(open_session, engine, agent, lifetime=lifetime))
        logger.info("web sign-in: agent-%d", agent.id)
        response = self._redirect(request, "/liste")
        response.set_cookie(SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()), httponly=True, samesite="lax", secure=self._secure(request),
                            path=self._base(request) or "/")
        response.delete_cookie(SIGNIN_COOKIE, path=self._base(request) or "/")
        return response

    async def signout(self, request):
        from starlette.concurrency import run_in_threadpool

        from nonrecours.serving.agents import close_session

        session = await self._session(request)
        if await self._form(request, session) is None:
            return self._error(request, HTTP_FORBIDDEN, self.t("error.forbidden"), session)
        await run_in_threadpool(close_session, self._engine(), request.cookies[SESSION_COOKIE])
        response = self._redirect(request, "/connexion")
        response.delete_cookie(SESSION_COOKIE, path=self._base(request) or "/")
        return response

    # -- the caseload ---------------------------------------------------------------------
    async def caseload(self, request):
        from starlette.concurrency import run_in_threadpool

        from nonrecours.core.schema import BENEFITS
        from nonrecours.serving.caseload import STATUSES, Filters, page

        session = await self._session(request)
        if session is None:
            return self._redirect(request, "/connexion")
        q = request.query_params
        filters = Filters(benefit=q.get("benefit") or None, territory=q.get("territory") or None, status=q.get("status") or None)
        bad = _bad_filter(filters, BENEFITS, STATUSES, q.get("page", "1"))
        if bad:
            return self._error(request, HTTP_BAD_REQUEST, self.t("error.bad_form", why=bad), session)
        shown = await run_in_threadpool(partial(page, self._engine(), session.agent.team, q.get("campaign") or None, filters, number=int(q.get("page", "1")),
                                                size=self.settings.web.page_size))
        query = {k: v for k, v in (("campaign", shown.campaign_id), ("benefit", filters.benefit), ("territory", filters.territory), ("status", filters.status)) if v}
        return self._render(request, "caseload.html", session=session, page=shown, filters=filters, benefits=BENEFITS, statuses=STATUSES, query=query,
                            shown_benefits=BENEFITS_PER_ROW)

    # -- a household ----------------------------------------------------------------------
    async def _case(self, request, session):
        from starlette.concurrency import run_in_threadpool

        from nonrecours.serving.caseload import household

        return await run_in_threadpool(household, self._engine(), session.agent.team, request.path_params["decision_id"])

    async def household(self, request):
        session = await self._session(request)
        if session is None:
            return self._redirect(request, "/connexion")
        case = await self._case(request, session)
        if case is None:
            logger.warning("web: agent-%d refused a household outside their team's campaigns", session.agent.id)
            return self._error(request, HTTP_FORBIDDEN, self.t("household.forbidden"), session)
        return self._render(request, "household.html", session=session, case=case, results=RESULTS, recorded=request.query_params.get("ok") == "1",
                            form_token=secrets.token_urlsafe(FORM_TOKEN_BYTES))

    async def record(self, request):
        """One button: the result of a contact about one benefit, written as ``POST /outcomes``
        writes it (same request model, same log call), the agent's id as sender."""
        from pydantic import ValidationError
        from starlette.concurrency import run_in_threadpool

        from nonrecours.serving.request import OutcomeIn

        session = await self._session(request)
        form = await self._form(request, session)
        if form is None:
            return self._error(request, HTTP_FORBIDDEN, self.t("error.forbidden"), session)
        case = await self._case(request, session)
        if case is None:
            return self._error(request, HTTP_FORBIDDEN, self.t("household.forbidden"), session)
        result, benefit = str(form.get("result", "")), str(form.get("benefit", ""))
        if result not in RESULTS or benefit not in {b["benefit"] for b in case.benefits}:
            return self._error(request, HTTP_BAD_REQUEST, self.t("error.bad_form", why="result/benefit"), session)
        fields: dict = {"household_id": case.household_id, "benefit": benefit, "outcome_date": date.today(), "campaign_id": case.campaign_id,
                        "decision_id": case.decision_id, "idempotency_key": str(form.get("submission", "")) or None}
        if result == "reached":
            fields["contacted"] = True
        else:
            fields["result"] = result
        amount = str(form.get("amount", "")).strip().replace(",", ".").replace(" ", "")
        if result == "opened" and amount:
            try:
                fields["amount_granted"] = float(amount)
            except ValueError:
                return self._error(request, HTTP_BAD_REQUEST, self.t("error.bad_form", why=f"amount: {amount[:20]!r}"), session)
        try:
            outcome = OutcomeIn.model_validate(fields).outcome(f"agent-{session.agent.id}")
        except ValidationError as exc:
            first = exc.errors()[0]
            return self._error(request, HTTP_BAD_REQUEST, self.t("error.bad_form", why=f"{'.'.join(map(str, first['loc']))}: {first['msg']}"), session)
        await run_in_threadpool(self.sources.log().record_outcomes, [outcome])  # type: ignore[attr-defined]
        logger.info("web: agent-%d recorded an outcome on decision %d", session.agent.id, case.decision_id)
        return self._redirect(request, f"/foyer/{case.decision_id}?ok=1")

    # -- the notice -----------------------------------------------------------------------
    async def notice(self, request):
        from markdown_it import MarkdownIt

        from nonrecours.monitoring.notice import notice

        session = await self._session(request)
        champion = self.sources.champion()
        html = None
        if champion is not None:
            name, version, run_id, scorer = champion  # type: ignore[misc]
            text = notice(name=name, version=version, run_id=run_id, scorer=scorer, capacity_share=self.settings.training.capacity_share)
            html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
        return self._render(request, "notice.html", session=session, notice_html=html)


def _bad_filter(filters, benefits, statuses, page_number: str) -> str | None:
    """What is wrong with the caseload's query, or None."""
    if filters.benefit is not None and filters.benefit not in benefits:
        return f"benefit: {filters.benefit[:20]!r} is not one of {list(benefits)}"
    if filters.status is not None and filters.status not in statuses:
        return f"status: {filters.status[:20]!r} is not one of {list(statuses)}"
    if filters.territory is not None and not (filters.territory.isascii() and filters.territory.isalnum() and len(filters.territory) <= 3):
        return "territory: a département code such as 75, 2A or 974"
    if not (page_number.isascii() and page_number.isdigit()):
        return f"page: {page_number[:20]!r} is not a page number"
    return None
