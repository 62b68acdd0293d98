"""The review queue web page: a small server-rendered app mounted on the BentoML service at /queue.

Plain HTML forms (no JavaScript), Jinja2 templates, one stylesheet. Every POST carries the session's
CSRF token; every action goes through ``ReviewService`` as the signed-in reviewer, whose service errors
(409 conflict, 403 four-eyes, 422 bad verdict) come back as a message on the page with that status.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from features.errors import InvalidInput, TollgateError
from serving.auth import Caller, Forbidden
from serving.decisions import Conflict
from serving.reviews import REASON_CODES, NotFound
from serving.web import views
from serving.web.evidence import feast_facts
from serving.web.phrases import label_of
from serving.web.session import COOKIE, CSRF_FIELD, MAX_AGE_SECONDS, SIGN_IN_ROLES, Session, SessionCodec, reviewer_of

HERE = Path(__file__).resolve().parent
ERROR_STATUS = ((NotFound, 404), (Conflict, 409), (Forbidden, 403), (InvalidInput, 422))
NOTICES = {"claim": "You hold this case now.", "release": "Case released back to the queue.",
           "resolve": "Verdict recorded.", "approve": "Second approval recorded.",
           "signed-out": "You are signed out."}


PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
"""No scripts, no framing (the action buttons cannot be clickjacked), forms post only here."""


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token."""


def create_web_app(runtime: Callable[[], object], *, secret_file: Path | None = None,
                   facts: Callable[[object], Callable] | None = feast_facts) -> FastAPI:
    """The queue app over ``runtime()`` (the same lazily built runtime as the decision API)."""
    app = FastAPI(title="Tollgate review queue", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(label_of=label_of, csrf_field=CSRF_FIELD)
    codec = SessionCodec(secret_file)
    pages = _Pages(runtime, templates, codec, facts)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router())

    @app.middleware("http")
    async def guarded(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.update(PAGE_HEADERS)
        if not request.url.path.startswith(f"{request.scope.get('root_path', '')}/static/"):
            response.headers["Cache-Control"] = "no-store"  # case data stays out of shared caches
        return response

    @app.exception_handler(CsrfRefused)
    async def refused(request: Request, _: CsrfRefused) -> Response:
        return pages.render(request, "error.html", {"title": "Form expired", "message": (
            "This form was not accepted: its security token is missing or out of date. Reload the page and "
            "try again.")}, status=403)

    return app


class _Pages:
    def __init__(self, runtime, templates: Jinja2Templates, codec: SessionCodec, facts) -> None:
        self.runtime, self.templates, self.codec, self.facts = runtime, templates, codec, facts

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def session(self, request: Request) -> Session | None:
        return self.codec.read(request.cookies.get(COOKIE))

    def reviewer(self, request: Request) -> Caller | None:
        return reviewer_of(self.runtime().engine, self.session(request))

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.codec.write(session), max_age=MAX_AGE_SECONDS, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https", path=self.base(request) or "/")

    def render(self, request: Request, template: str, context: dict, *, status: int = 200,
               reviewer: Caller | None = None) -> HTMLResponse:
        session = self.session(request)
        fresh = session is None
        session = session or Session.anonymous()
        response = self.templates.TemplateResponse(request, template, {
            "base": self.base(request), "csrf": session.csrf, "reviewer": reviewer, **context}, status_code=status)
        if fresh:
            self.set_session(request, response, session)
        return response

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        return RedirectResponse(self.base(request) + path, status_code=303)

    async def form(self, request: Request) -> dict:
        """The posted form, once its CSRF token matched the session's (else CsrfRefused → 403)."""
        form = await request.form()
        session = self.session(request)
        if session is None or not session.accepts(form.get(CSRF_FIELD)):
            raise CsrfRefused
        return {k: str(v) for k, v in form.items()}

    # -- routes -----------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)  # pages, not API: kept out of /docs
        router.add_api_route("/", self.queue, methods=["GET"], name="queue")
        router.add_api_route("/sign-in", self.sign_in_page, methods=["GET"], name="sign_in")
        router.add_api_route("/sign-in", self.sign_in, methods=["POST"])
        router.add_api_route("/sign-out", self.sign_out, methods=["POST"], name="sign_out")
        router.add_api_route("/cases/{case_id}", self.case, methods=["GET"], name="case")
        router.add_api_route("/cases/{case_id}/{action}", self.act, methods=["POST"], name="act")
        return router

    def sign_in_page(self, request: Request) -> Response:
        if self.reviewer(request) is not None:
            return self.redirect(request, "/")
        notice = NOTICES.get(request.query_params.get("done", ""))
        return self.render(request, "sign_in.html", {"notice": notice})

    async def sign_in(self, request: Request) -> Response:
        form = await self.form(request)
        key = form.get("api_key", "").strip()
        caller = self.runtime().caller(f"Bearer {key}") if key else None
        if caller is None or caller.role not in SIGN_IN_ROLES:
            status = 401 if caller is None else 403
            message = ("That API key was not recognised (or has been revoked)." if caller is None else
                       f"A key with the role '{caller.role.value}' cannot use the review queue: sign in with a "
                       "reviewer, approver or admin key.")
            return self.render(request, "sign_in.html", {"error": message}, status=status)
        response = self.redirect(request, "/")
        self.set_session(request, response, self.session(request).signed_in(caller.key_id))
        return response

    async def sign_out(self, request: Request) -> Response:
        await self.form(request)
        response = self.redirect(request, "/sign-in?done=signed-out")
        self.set_session(request, response, Session.anonymous())
        return response

    def queue(self, request: Request) -> Response:
        reviewer = self.reviewer(request)
        if reviewer is None:
            return self.redirect(request, "/sign-in")
        query = views.QueueQuery.parse(request.query_params)
        error = None
        try:
            listing = self.runtime().reviews.list_cases(**query.service_args())
        except TollgateError as exc:
            listing, error = {"items": [], "total": 0}, str(exc)
        return self.render(request, "queue.html", {
            "query": query, "page": views.queue_page(listing, query), "error": error, "statuses": views.STATUSES,
            "sorts": views.SORTS, "sla_choices": views.SLA_CHOICES, "classes": views.CLASSES,
            "shipment_classes": views.SHIPMENT_CLASSES}, reviewer=reviewer)

    def case(self, request: Request, case_id: str) -> Response:
        reviewer = self.reviewer(request)
        if reviewer is None:
            return self.redirect(request, "/sign-in")
        notice = NOTICES.get(request.query_params.get("done", ""))
        return self.case_response(request, reviewer, case_id, notice=notice)

    def case_response(self, request: Request, reviewer: Caller, case_id: str, *, error: str | None = None,
                      status: int = 200, notice: str | None = None) -> Response:
        rt = self.runtime()
        try:
            raw = rt.reviews.get_case(case_id)
        except NotFound:
            return self.render(request, "error.html", {"title": "No such case", "message": (
                f"There is no review case {case_id[:40]!r}.")}, status=404, reviewer=reviewer)
        page = views.case_page(raw, reviewer, facts_lookup=self.facts(rt) if self.facts else None, engine=rt.engine)
        return self.render(request, "case.html", {
            **page, "error": error, "notice": notice, "reason_codes": REASON_CODES,
            "resolve_token": secrets.token_urlsafe(16)}, status=status, reviewer=reviewer)

    async def act(self, request: Request, case_id: str, action: str) -> Response:
        form = await self.form(request)
        reviewer = self.reviewer(request)
        if reviewer is None:
            return self.redirect(request, "/sign-in")
        reviews = self.runtime().reviews
        calls = {"claim": lambda: reviews.claim(case_id, reviewer),
                 "release": lambda: reviews.release(case_id, reviewer),
                 "approve": lambda: reviews.approve(case_id, reviewer),
                 "resolve": lambda: reviews.resolve(case_id, reviewer, verdict_of(form),
                                                    idempotency_key=form.get("resolve_token") or None)}
        if action not in calls:
            return self.render(request, "error.html", {"title": "Unknown action", "message": (
                f"'{action[:32]}' is not something a reviewer can do to a case.")}, status=404, reviewer=reviewer)
        try:
            calls[action]()
        except TollgateError as exc:
            status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 503)
            return self.case_response(request, reviewer, case_id, error=_explain(exc, status), status=status)
        return self.redirect(request, f"/cases/{case_id}?done={action}")


def verdict_of(form: dict) -> dict:
    """The verdict dict from the resolve form (empty fields are absent; a bad amount is a 422)."""
    raw = form.get("amount", "").strip().replace(",", "").replace("$", "")
    try:
        amount = float(raw) if raw else None
    except ValueError:
        raise InvalidInput(f"amount: '{raw[:32]}' is not a number", field="amount") from None
    return {"verdict": form.get("verdict", ""), "amount": amount,
            "reason_code": form.get("reason_code") or None, "discrepancy": form.get("discrepancy") or None,
            "note": form.get("note", "").strip() or None}


def _explain(exc: TollgateError, status: int) -> str:
    prefix = {409: "Conflict", 403: "Not allowed", 422: "Please correct the form", 404: "Not found"}.get(
        status, "The review service could not do that right now")
    return f"{prefix}: {exc}"


__all__ = ["create_web_app", "verdict_of"]
