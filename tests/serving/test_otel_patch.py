"""BentoML's timeout middleware, patched: no timer (and so no request context) outlives its request."""

import asyncio
import contextvars

import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware

from serving.otel import release_request_spans

REQUEST_SPAN = contextvars.ContextVar("request_span")


async def _run(app_delay: float, timeout: float):
    async def app(scope, receive, send):
        await asyncio.sleep(app_delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    REQUEST_SPAN.set(object())  # what the OpenTelemetry middleware does before ours runs
    await TimeoutMiddleware(app, timeout)({"type": "http"}, receive, send)
    loop = asyncio.get_running_loop()
    live = [h for h in loop._scheduled if not h.cancelled()]  # noqa: SLF001 - the retention we fixed
    holding = [h for h in loop._scheduled if REQUEST_SPAN in h._context]  # noqa: SLF001
    return sent, live, holding


def test_patched_middleware_keeps_no_timer_and_no_span():
    assert release_request_spans() is True
    sent, live, holding = asyncio.run(_run(0.0, 60))
    assert sent[0]["status"] == 200
    assert live == [] and holding == []


def test_patched_middleware_still_times_out_with_504():
    release_request_spans()
    sent, _, _ = asyncio.run(_run(0.5, 0.05))
    assert sent[0]["status"] == 504


@pytest.mark.parametrize("n", [200])
def test_many_requests_leave_nothing_scheduled(n):
    release_request_spans()

    async def many():
        results = [await _run(0.0, 60) for _ in range(n)]
        return sum(len(live) for _, live, _ in results)

    assert asyncio.run(many()) == 0
