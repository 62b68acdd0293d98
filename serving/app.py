"""The HTTP API (FastAPI, mounted on the BentoML service under /v1). Errors map to status codes here only."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.errors import FeaturesUnavailable, InvalidInput, TollgateError
from serving import jsontext, live_updates
from serving.auth import Caller, Forbidden, Role
from serving.decisions import Conflict
from serving.explanations import explain_decision
from serving.metrics import observe, observe_batch
from serving.review_api import review_router
from serving.reviews import NotFound
from serving.runtime import UNCACHED, Runtime, build_runtime
from serving.schemas import (
    EventAccepted,
    EventIn,
    EventType,
    InvoiceBatchDecision,
    InvoiceBatchIn,
    InvoiceDecision,
    InvoiceIn,
    ShipmentBatchDecision,
    ShipmentBatchIn,
    ShipmentDecision,
    ShipmentIn,
)

MAX_BODY_BYTES = 2 * 1024 * 1024


class Unauthorized(TollgateError):
    pass


class BodyLimit:
    """Bodies over the limit get the API's JSON 413 and reach nothing else. A body declared too long
    (content-length) is refused before it is read; a body without a length (chunked) is read up to the
    limit first, then handed on. A pure ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task
    and a stream per request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                await _too_large()(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > MAX_BODY_BYTES:
                await _too_large()(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}],
                                      then=receive), send)


def _replay(messages: list[dict], then=None):
    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        return await then() if then else {"type": "http.disconnect"}
    return receive


def _too_large() -> JSONResponse:
    return JSONResponse({"error": "PayloadTooLarge", "detail": f"body over {MAX_BODY_BYTES} bytes"}, 413)


def create_app(runtime_factory: Callable[[], Runtime] = build_runtime) -> FastAPI:
    """The API; the runtime (database, models) is built on first request, not at import."""
    app = FastAPI(title="Tollgate decision API", version="1", docs_url=None, redoc_url=None)
    state: dict[str, Runtime] = {}
    building = threading.Lock()

    def runtime() -> Runtime:
        if "rt" not in state:
            with building:  # concurrent first requests build one runtime
                if "rt" not in state:
                    state["rt"] = runtime_factory()
        return state["rt"]

    def role(*allowed: Role) -> Callable[..., Caller]:
        # async: a cached key is a dict lookup, not worth a hop to the thread pool; building the runtime
        # and a cache miss (a database read) go to the pool, never blocking the event loop
        async def check(authorization: str | None = Header(default=None)) -> Caller:
            built = state.get("rt")
            caller = built.cached_caller(authorization) if built is not None else UNCACHED
            if caller is UNCACHED:
                caller = await run_in_threadpool(lambda: runtime().caller(authorization))
            if caller is None:
                raise Unauthorized("missing or invalid API key (Authorization: Bearer <key>)")
            if caller.role not in allowed and caller.role != Role.ADMIN:
                raise Forbidden(f"role '{caller.role}' may not call this endpoint")
            return caller
        return check

    _install_errors(app)
    app.add_middleware(BodyLimit)
    app.include_router(review_router(runtime, role), prefix="/reviews", tags=["reviews"])

    @app.post("/shipments/decide", response_model=ShipmentDecision)
    async def decide_shipment(body: ShipmentIn, caller: Caller = Depends(role(Role.ORCHESTRATOR)),
                              idempotency_key: str | None = Header(default=None, max_length=128)) -> JSONResponse:
        """Decide one shipment at dispatch."""
        # On the event loop's own thread. A decision is a few milliseconds of CPU under the GIL: handed
        # to a thread, the two threads trade the GIL and wake each other for every request (measured with
        # 2 workers at concurrency 8: 376/379/299 decisions/s on one decision thread, 404/460/393 here, in
        # alternating runs; p99 43/43/57 -> 37/33/41 ms). The loop does nothing else meanwhile, waits
        # included: SQLite's writer lock (30 s at the most, serving/sqlite_writers.py), a PostgreSQL round
        # trip or pool checkout (30 s pool timeout), a Redis read (2 s socket timeouts, features/store.py).
        # The first decision of a process loads the model (seconds): that one goes to the thread pool.
        rt = runtime()
        decide = functools.partial(rt.decisions.decide_shipments, [body], header_key=idempotency_key,
                                   caller=caller.key_id)
        done = decide() if rt.delay_scorer_loaded else await run_in_threadpool(decide)
        return _respond(_observed(done)[0])

    @app.post("/shipments/decide/batch", response_model=ShipmentBatchDecision)
    def decide_shipments(body: ShipmentBatchIn, caller: Caller = Depends(role(Role.ORCHESTRATOR)),
                         idempotency_key: str | None = Header(default=None, max_length=128)) -> JSONResponse:
        """Decide up to 1,000 shipments in one request."""
        done, texts, decided_in = runtime().decide_shipment_batch(body.shipments, header_key=idempotency_key,
                                                                  caller=caller.key_id)
        _observed(done)
        observe_batch(decided_in)
        return _respond({"decisions": texts})  # each decision's logged JSON text, as it is

    @app.post("/invoices/decide", response_model=InvoiceDecision)
    def decide_invoice(body: InvoiceIn, caller: Caller = Depends(role(Role.ORCHESTRATOR)),
                       idempotency_key: str | None = Header(default=None, max_length=128)) -> JSONResponse:
        """Decide one carrier invoice: approve, hold, dispute or review."""
        return _respond(_observed(runtime().decide_invoices([body], header_key=idempotency_key,
                                                            caller=caller.key_id))[0])

    @app.post("/invoices/decide/batch", response_model=InvoiceBatchDecision)
    def decide_invoice_batch(body: InvoiceBatchIn, caller: Caller = Depends(role(Role.ORCHESTRATOR)),
                             idempotency_key: str | None = Header(default=None, max_length=128)) -> JSONResponse:
        """Decide up to 1,000 invoices in one request, in order."""
        decided = runtime().decide_invoices(body.invoices, header_key=idempotency_key, caller=caller.key_id)
        return _respond({"decisions": _observed(decided)})

    @app.post("/events", response_model=EventAccepted)
    def post_event(body: EventIn, _: Caller = Depends(role(Role.ORCHESTRATOR))) -> dict:
        """A shipment milestone; departures and arrivals update the live features online."""
        rt = runtime()
        new = live_updates.record_event(rt.engine, body)
        movement = live_updates.movement_of(rt.engine, body.shipment_id)
        views: list[str] = []
        if body.type in (EventType.DEPARTED, EventType.ARRIVED) and movement:
            frames = live_updates.snapshots(rt.engine, origin=movement["origin"], carrier=movement["carrier"],
                                            destination=movement["destination"], at=body.occurred_at)
            try:
                views = live_updates.push_snapshots(rt.online_store(), frames)
            except Exception as exc:  # noqa: BLE001 - the event is stored; a retry re-pushes
                raise FeaturesUnavailable(f"event stored, online features not updated: {exc}") from exc
        return {"event_id": body.event_id, "accepted": new, "updated_views": views}

    @app.get("/decisions/{decision_id}")
    def get_decision(decision_id: str, _: Caller = Depends(role(Role.ORCHESTRATOR, Role.REVIEWER,
                                                                 Role.APPROVER))) -> dict:
        """A recorded decision, exactly as it was returned."""
        found = runtime().decisions.get(decision_id)
        if found is None:
            return JSONResponse({"error": "NotFound", "detail": f"no decision {decision_id}"}, 404)
        case_id = runtime().reviews.case_of_decision(decision_id)
        link = {"Link": f'</v1/reviews/{case_id}>; rel="review-case"'} if case_id else None
        return JSONResponse(found, headers=link)

    @app.get("/decisions/{decision_id}/explanation")
    def explain(decision_id: str, _: Caller = Depends(role(Role.ORCHESTRATOR, Role.REVIEWER, Role.APPROVER))) -> dict:
        """Exact TreeSHAP reasons for a logged shipment decision, with the model version that decided it."""
        row = runtime().decisions.logged(decision_id)
        if row is None:
            return JSONResponse({"error": "NotFound", "detail": f"no decision {decision_id}"}, 404)
        return _respond(explain_decision(row, runtime().model_version))

    app.state.runtime = runtime
    return app


class DecisionJSON(JSONResponse):
    """JSON as pydantic would write it for the response model: a non-finite float is ``null``
    (:mod:`serving.jsontext`)."""

    def render(self, content) -> bytes:
        return jsontext.encode(content)


def _respond(body: dict) -> JSONResponse:
    """A decision body as built by :mod:`serving.decisions` (already the response model's JSON form, or
    the recorded original): sent as it is, not validated a second time against ``response_model``."""
    return DecisionJSON(body)


def _observed(decisions: list[dict]) -> list[dict]:
    observe(decisions)
    return decisions


def _install_errors(app: FastAPI) -> None:
    status = {Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, InvalidInput: 422}

    @app.exception_handler(TollgateError)
    async def tollgate_error(_: Request, exc: TollgateError) -> JSONResponse:
        code = next((c for t, c in status.items() if isinstance(exc, t)), 503)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
                  for e in exc.errors()]
        return JSONResponse({"error": "InvalidInput", "detail": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return _too_large()
        return await http_exception_handler(request, exc)

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"error": "DatabaseUnavailable", "detail": "the decision log is unreachable; "
                             "nothing was decided or recorded"}, 503)
