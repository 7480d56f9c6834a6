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
access logs hold no raw id. Sign-in failures lock the account (``serving.signin_max_failures``,
``serving.signin_lockout_minutes``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from http import HTTPStatus
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nonrecours.core.catalogue import catalogue
from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.schema import BENEFITS
from nonrecours.monitoring.notice import notice_html
from nonrecours.serving.agents import LockedOut, close_session, open_session, session_of, sign_in
from nonrecours.serving.asgi import read_body, replay
from nonrecours.serving.caseload import STATUSES, Filters, filter_problem, household, outcome_of_form, page
from nonrecours.serving.decision_log import DecisionLog
from nonrecours.training.model import Scorer

logger = logging.getLogger("nonrecours.web")

WEB_PATH = "/agents"
SESSION_COOKIE = "nonrecours_session"
SIGNIN_COOKIE = "nonrecours_signin"
RESULTS = ("reached", "unreachable", "opened", "not_entitled", "declined")
"""The buttons of a household's page: ``reached`` records a contact without result yet (the API's
``contacted: true``); the others are campaign results (``OUTREACH_RESULTS``)."""
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors "
        b"'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
NO_STORE = {"cache-control": "no-store"}
FORM_TOKEN_BYTES = 24
BENEFITS_PER_ROW = 3
"""Benefits a caseload row shows (the largest expected amounts first); the household's page has them all."""


@dataclass
class Sources:
    """What the page reads, given by whoever mounts it: the decision log (its engine holds the
    agents' and caseload tables) and the champion serving, for the notice (or None)."""

    log: Callable[[], DecisionLog]
    champion: Callable[[], tuple[str, str, str, Scorer] | None] = lambda: None


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
    await send(
        {
            "type": "http.response.start",
            "status": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": f"form over {MAX_FORM_BYTES:,} bytes".encode()})


def build_web_app(settings: Settings, sources: Sources):
    """The page as a Starlette application (mount it at :data:`WEB_PATH`)."""
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
    app = Starlette(routes=routes, exception_handlers={Exception: page.failure, HTTPStatus.NOT_FOUND: page.missing})
    return SecurityHeaders(app)


class _Page:
    """The page's handlers; each reads the session first, and the decision log's engine in a thread."""

    def __init__(self, settings: Settings, sources: Sources, templates, messages):
        self.settings, self.sources, self.templates, self.t = settings, sources, templates, messages

    # -- plumbing -------------------------------------------------------------------------
    async def _db(self, query: Callable, *args, **kwargs):
        """``query(engine, *args, **kwargs)`` on the decision log's database, off the event loop."""
        return await run_in_threadpool(partial(query, self.sources.log().engine, *args, **kwargs))

    @staticmethod
    def _base(request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def _cookie(self, request, response, name: str, value: str, **options) -> None:
        """A cookie the page's path only sees, HttpOnly, Secure over HTTPS (or behind a TLS proxy)."""
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        secure = self.settings.web.secure_cookies == "always" or request.url.scheme == "https" or forwarded == "https"
        response.set_cookie(name, value, httponly=True, secure=secure, path=self._base(request) or "/", **options)

    def _render(self, request, name: str, status: int = HTTPStatus.OK, **context):
        html = self.templates.get_template(name).render(
            t=self.t, base=self._base(request), lang=self.t.language, **context
        )
        return HTMLResponse(html, status_code=status, headers=NO_STORE)

    def _redirect(self, request, path: str):
        return RedirectResponse(self._base(request) + path, status_code=HTTPStatus.SEE_OTHER, headers=NO_STORE)

    async def _session(self, request):
        token = request.cookies.get(SESSION_COOKIE)
        return await self._db(session_of, token) if token else None

    def _error(self, request, status: int, message: str, session=None):
        return self._render(request, "error.html", status=status, message=message, session=session)

    async def failure(self, request, exc: Exception):
        logger.error(
            "web page %s failed: %s", request.url.path, type(exc).__name__
        )  # the type only: a message may quote a form
        return self._error(request, HTTPStatus.SERVICE_UNAVAILABLE, self.t("error.unavailable"))

    async def missing(self, request, exc: Exception):
        return self._error(request, HTTPStatus.NOT_FOUND, self.t("error.not_found"))

    async def _form(self, request, session) -> dict | None:
        """The posted form if its CSRF token is the session's, else None."""
        form = dict(await request.form())
        given = str(form.get("csrf", ""))
        return form if session is not None and given and secrets.compare_digest(given, session.csrf) else None

    # -- sign-in --------------------------------------------------------------------------
    async def home(self, request):
        return self._redirect(request, "/liste" if await self._session(request) else "/connexion")

    def _signin_page(self, request, status: int = HTTPStatus.OK, message: str | None = None):
        token = secrets.token_urlsafe(FORM_TOKEN_BYTES)
        response = self._render(request, "signin.html", status=status, token=token, message=message, session=None)
        self._cookie(request, response, SIGNIN_COOKIE, token, samesite="strict")
        return response

    async def signin_form(self, request):
        return self._signin_page(request)

    async def signin(self, request):
        form = dict(await request.form())
        cookie, given = request.cookies.get(SIGNIN_COOKIE, ""), str(form.get("token", ""))
        if not cookie or not given or not secrets.compare_digest(cookie, given):
            return self._signin_page(request, HTTPStatus.BAD_REQUEST, self.t("signin.expired"))
        s = self.settings.serving
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        lockout = timedelta(minutes=s.signin_lockout_minutes)
        try:
            agent = await self._db(sign_in, name, password, max_failures=s.signin_max_failures, lockout=lockout)
        except LockedOut as exc:
            logger.warning("web sign-in refused: account locked")
            return self._signin_page(request, HTTPStatus.FORBIDDEN, self.t("signin.locked", until=f"{exc.until:%H:%M}"))
        if agent is None:
            logger.warning("web sign-in failed")
            return self._signin_page(request, HTTPStatus.FORBIDDEN, self.t("signin.failed"))
        lifetime = timedelta(hours=self.settings.web.session_hours)
        token, _ = await self._db(open_session, agent, lifetime=lifetime)
        logger.info("web sign-in: agent-%d", agent.id)
        response = self._redirect(request, "/liste")
        self._cookie(request, response, SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()), samesite="lax")
        response.delete_cookie(SIGNIN_COOKIE, path=self._base(request) or "/")
        return response

    async def signout(self, request):
        session = await self._session(request)
        if await self._form(request, session) is None:
            return self._error(request, HTTPStatus.FORBIDDEN, self.t("error.forbidden"), session)
        await self._db(close_session, request.cookies[SESSION_COOKIE])
        response = self._redirect(request, "/connexion")
        response.delete_cookie(SESSION_COOKIE, path=self._base(request) or "/")
        return response

    # -- the caseload ---------------------------------------------------------------------
    async def caseload(self, request):
        session = await self._session(request)
        if session is None:
            return self._redirect(request, "/connexion")
        q = request.query_params
        filters = Filters(
            benefit=q.get("benefit") or None, territory=q.get("territory") or None, status=q.get("status") or None
        )
        bad = filter_problem(filters, q.get("page", "1"))
        if bad:
            return self._error(request, HTTPStatus.BAD_REQUEST, self.t("error.bad_form", why=bad), session)
        number, size = int(q.get("page", "1")), self.settings.web.page_size
        shown = await self._db(page, session.agent.team, q.get("campaign") or None, filters, number=number, size=size)
        kept = {
            "campaign": shown.campaign_id,
            "benefit": filters.benefit,
            "territory": filters.territory,
            "status": filters.status,
        }
        context = {
            "page": shown,
            "filters": filters,
            "benefits": BENEFITS,
            "statuses": STATUSES,
            "shown_benefits": BENEFITS_PER_ROW,
        }
        return self._render(
            request, "caseload.html", session=session, query={k: v for k, v in kept.items() if v}, **context
        )

    # -- a household ----------------------------------------------------------------------
    async def _case(self, request, session):
        return await self._db(household, session.agent.team, request.path_params["decision_id"])

    async def household(self, request):
        session = await self._session(request)
        if session is None:
            return self._redirect(request, "/connexion")
        case = await self._case(request, session)
        if case is None:
            logger.warning("web: agent-%d refused a household outside their team's campaigns", session.agent.id)
            return self._error(request, HTTPStatus.FORBIDDEN, self.t("household.forbidden"), session)
        recorded, token = request.query_params.get("ok") == "1", secrets.token_urlsafe(FORM_TOKEN_BYTES)
        return self._render(
            request, "household.html", session=session, case=case, results=RESULTS, recorded=recorded, form_token=token
        )

    async def record(self, request):
        """One button: the result of a contact about one benefit, written as ``POST /outcomes``
        writes it (same request model, same log call), the agent's id as sender."""
        session = await self._session(request)
        form = await self._form(request, session)
        if form is None:
            return self._error(request, HTTPStatus.FORBIDDEN, self.t("error.forbidden"), session)
        case = await self._case(request, session)
        if case is None:
            return self._error(request, HTTPStatus.FORBIDDEN, self.t("household.forbidden"), session)
        try:
            outcome = outcome_of_form(form, case, RESULTS, sender=f"agent-{session.agent.id}")
        except UserError as exc:
            return self._error(request, HTTPStatus.BAD_REQUEST, self.t("error.bad_form", why=str(exc)), session)
        await run_in_threadpool(self.sources.log().record_outcomes, [outcome])
        logger.info("web: agent-%d recorded an outcome on decision %d", session.agent.id, case.decision_id)
        return self._redirect(request, f"/foyer/{case.decision_id}?ok=1")

    # -- the notice -----------------------------------------------------------------------
    async def notice(self, request):
        champion = self.sources.champion()
        html = (
            None if champion is None else notice_html(*champion, capacity_share=self.settings.training.capacity_share)
        )
        return self._render(request, "notice.html", session=await self._session(request), notice_html=html)
