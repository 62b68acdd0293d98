"""Stop BentoML 1.4.40 from retaining every request's OpenTelemetry span for a minute.

Measured here (see docs/decisions.md): ``bentoml._internal.server.http.traffic.TimeoutMiddleware``
arms ``loop.call_later(timeout, ...)`` for every request and never cancels it. asyncio copies the
current ``contextvars`` context into each timer, and the OpenTelemetry middleware outside it has just
made the request's span current, so the event loop's timer heap keeps one span (plus its future and
context) per request for ``traffic.timeout`` seconds: ~13,600 spans at 235 requests/s, +68% worker
memory over 20,000 requests, and full garbage collections growing to 400 ms.

The replacement keeps the middleware's behaviour (504 after the timeout) but arms the timer in an empty
context and cancels it as soon as the response starts. It is applied when the service module is
imported, before BentoML builds its ASGI app. Pinned to the bentoml version it was measured on.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc

from starlette.responses import JSONResponse

PATCHED_FOR = "1.4.40"


async def _timeout_call(self, scope, receive, send) -> None:
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    # An empty context: the timer must not keep the request's span (or anything else) alive.
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter, context=contextvars.Context())

    async def _send(message) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    work = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        try:
            await waiter
        finally:
            timer.cancel()
    except asyncio.TimeoutError:
        if work.cancel():
            body = {"error": f"Not able to process the request in {self.timeout} seconds"}
            await JSONResponse(body, status_code=504)(scope, receive, send)
    else:
        await work


def release_request_spans() -> bool:
    """Patch BentoML's timeout middleware (only on the version it was measured on); True if applied."""
    import bentoml
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    if bentoml.__version__ != PATCHED_FOR:
        return False
    TimeoutMiddleware.__call__ = _timeout_call
    return True


def freeze_long_lived() -> None:
    """Move everything allocated so far out of the collector's reach: called at start-up (~115k objects)
    and again once the models, the feature store and the database are loaded on first use — otherwise
    each full collection rescans them all, a pause of tens of milliseconds in some request's latency."""
    gc.collect()
    gc.freeze()
