"""The BentoML service: one service, the decision API mounted under /v1, the reviewers' web page under
/queue, BentoML's /healthz, /readyz, /metrics and /docs (which includes the mounted API's OpenAPI).

Started by ``bentoml serve serving.service:Tollgate`` (``make serve``). Nothing is loaded at import:
the database and models are opened as each worker starts (a start-up thread running the readiness check).
"""

from __future__ import annotations

import functools
import os
import threading

import bentoml

from serving.app import create_app
from serving.balance import ConnectionBalance, bentoml_workers
from serving.otel import freeze_long_lived, release_request_spans
from serving.runtime import build_runtime, invoice_nice
from serving.web import create_web_app

# Invoices are decided in a child process of each worker, so that their pandas work never holds the GIL
# the worker's shipment decisions need (serving/invoice_process.py); TOLLGATE_INVOICE_PROCESS=0 (or
# false, off, no) decides them on the worker's thread pool instead.
INVOICE_PROCESS = os.environ.get("TOLLGATE_INVOICE_PROCESS", "1").strip().lower() not in ("0", "false", "off", "no")
if INVOICE_PROCESS:
    invoice_nice()  # a bad TOLLGATE_INVOICE_NICE stops the service at start, not its first invoice
api = create_app(functools.partial(build_runtime, invoice_process=INVOICE_PROCESS))
# Keep-alive connections moved between the workers that really run until they are split evenly
# (serving/balance.py); TOLLGATE_CONNECTION_BALANCE=0 (or false, off, no) turns it off, e.g. behind a
# proxy that balances by itself.
BALANCE = os.environ.get("TOLLGATE_CONNECTION_BALANCE", "1").strip().lower() not in ("0", "false", "off", "no")
api.add_middleware(ConnectionBalance, workers=bentoml_workers if BALANCE else 1)
queue = create_web_app(api.state.runtime)  # the same runtime (database, review service) as the API
SPANS_RELEASED = release_request_spans()
# The shipment decision paths (single and /batch: the pattern is searched in the URL) are not traced: with
# no exporter configured BentoML still builds three spans per request (p50 at c1 3.4-3.9 -> 2.9-3.4 ms in
# alternating runs here); every decision is in the audit log and in /metrics. Tracing them is a
# configuration change: remove them from this list.
UNTRACED = ["/v1/shipments/decide"]


@bentoml.asgi_app(queue, path="/queue")
@bentoml.asgi_app(api, path="/v1")
@bentoml.service(name="tollgate", workers=2, traffic={"timeout": 30}, metrics={"enabled": True},
                 tracing={"excluded_urls": UNTRACED})
class Tollgate:
    """Tollgate decision service."""

    @bentoml.on_startup
    def _freeze(self) -> None:
        freeze_long_lived()
        # the delay model and the invoice process are loaded as the worker starts, not by the first
        # decisions (an invoice waited 17 s once in CI for its child's start); readiness says when
        threading.Thread(target=self.__is_ready__, name="warm-up", daemon=True).start()

    def __is_ready__(self) -> bool:
        """Ready once the delay model is loaded and the invoice process has loaded what it can (no invoice
        model is not "not ready": invoices are then decided degraded, as they would be later)."""
        try:
            runtime = api.state.runtime()
            runtime.delay_scorer()
        except Exception:  # noqa: BLE001 - not ready yet; decisions would be degraded
            return False
        return runtime.invoices_ready()
