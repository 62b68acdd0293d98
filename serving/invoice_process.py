"""Invoice decisions in a process of their own beside each service worker (docs/decisions.md, session 12),
and a worker's second shipment batch in flight (session 18).

An invoice decision is 0.2-0.4 s of pandas under the GIL. Run on a worker's thread pool, it shares that
worker's GIL with the shipment decisions on its event loop: each time a shipment decision waits for
SQLite or Redis it gives the GIL up and waits a switch interval (5 ms) or a whole pandas call to get it
back. Measured with one invoice at a time in flight beside shipments at concurrency 8: the shipments'
p99 went from 30-39 ms to 212-257 ms. In a child process the two compete for the CPU only, which the
kernel shares out far more finely.

Each worker starts one child (``spawn``: a fork of a worker with threads running is not safe), which
builds its own runtime on the same database and online store and decides invoices exactly as the worker
would (:func:`serving.invoice_decisions.decide_invoices`), one request after another. The service warms
it as it starts (:meth:`InvoiceProcess.warm`, from its readiness check): otherwise the first invoice to
each worker waited for the child's imports, runtime and model (17 s once in CI). A child that dies is
replaced and the request sent again once: a decision it recorded before dying is then found by its
idempotency key, so a retry never decides twice.

A worker decides one shipment batch at a time on its own threads; a second batch arriving meanwhile would
share its GIL with the first (two batches landing on one worker ran no faster together than one after the
other, while the other worker idled). If the child is idle and warmed, that batch is decided there instead,
by the same code on the same database (:meth:`InvoiceProcess.try_decide_shipments`); if it is busy, not
yet warmed or dies, the worker decides the batch itself, as before.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from features.errors import TollgateError

_config: tuple = ()  # the child's copy of the worker's configuration
_runtime = None  # the child's own runtime, built by its warm-up or first request


class InvoiceWorkerUnavailable(TollgateError):
    """The invoice process died twice in a row on one request (a 503: nothing was decided by it)."""


def _start(database_url: str, tracking_uri: str, store_settings, nice: int) -> None:
    """In the child, once: its priority and the worker's configuration as the worker read it (not the
    environment again). Nothing here can fail on the database: a failing initializer breaks the pool."""
    global _config
    if nice:
        os.nice(nice)
    _config = (database_url, tracking_uri, store_settings)
    threading.Thread(target=_exit_with, args=(os.getppid(),), name="exit-with-worker", daemon=True).start()


def _exit_with(worker: int) -> None:
    """End the child when its worker is gone. The pool's own queues cannot tell it: the child holds both
    ends of them, so a worker killed outright would leave it waiting for work forever."""
    while os.getppid() == worker:
        time.sleep(1.0)
    os._exit(0)


def _child_runtime():
    global _runtime
    if _runtime is None:
        from serving.runtime import build_runtime

        database_url, tracking_uri, store_settings = _config
        runtime = build_runtime(database_url)
        runtime.tracking_uri, runtime.store_settings = tracking_uri, store_settings  # before any model loads
        _runtime = runtime
    return _runtime


def _warm() -> dict:
    """In the child: import, build and load what an invoice decision and a shipment batch need; what it
    could load (a model that could not be is None, with the reason)."""
    from features.errors import ModelUnavailable, TollgateError
    from serving import invoice_decisions  # noqa: F401 - its imports (pandas, the audit features)

    runtime = _child_runtime()
    out: dict = {"pid": os.getpid()}
    try:
        scorer = runtime.invoice_scorer()
        out["invoice_model"] = f"{scorer.model.name}/{scorer.model.version}"
    except ModelUnavailable as exc:
        out |= {"invoice_model": None, "reason": str(exc)}
    try:
        model = runtime.delay_scorer().model
        out["delay_model"] = f"{model.name}/{model.version}"
    except TollgateError as exc:  # no champion, or its features: the child decides no batch
        out |= {"delay_model": None, "delay_reason": str(exc)}
    return out


def _decide(invoices: list, header_key: str | None, caller: str | None) -> tuple[str, object]:
    """In the child: the decisions, or an error the worker raises again as it would have itself."""
    from sqlalchemy.exc import OperationalError

    from serving.invoice_decisions import decide_invoices

    try:
        runtime = _child_runtime()
        return "ok", decide_invoices(runtime.decisions, runtime.invoice_scorer, invoices,
                                     header_key=header_key, caller=caller)
    except TollgateError as exc:  # Conflict, InvalidInput ...: carried as they are
        return "error", exc
    except OperationalError as exc:  # the database: a 503 in the worker, as in-process
        return "database", str(exc.orig)


def _decide_shipments(requests: list, header_key: str | None, caller: str | None) -> tuple[str, object]:
    """In the child: a shipment batch decided and recorded as the worker would, returned as what the
    worker answers with: each decision's metric labels (``serving.metrics.labels_of``) and its logged JSON."""
    from sqlalchemy.exc import OperationalError

    from serving.metrics import labels_of

    try:
        texts: list = []
        done = _child_runtime().decisions.decide_shipments(requests, header_key=header_key, caller=caller,
                                                            encoded=texts)
        return "ok", ([labels_of(decision) for decision in done], texts)
    except TollgateError as exc:
        return "error", exc
    except OperationalError as exc:
        return "database", str(exc.orig)


class InvoiceProcess:
    """The worker's side: decisions through one child process, started on first use."""

    def __init__(self, database_url: str, *, tracking_uri: str, store_settings, nice: int = 0) -> None:
        self._config = (database_url, tracking_uri, store_settings, nice)
        self._pool: ProcessPoolExecutor | None = None
        self._warming: tuple[ProcessPoolExecutor, Future] | None = None
        self._lock = threading.Lock()
        self._in_flight = 0  # requests handed to the child and not yet answered

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start, initargs=self._config)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def warm(self) -> Future:
        """Start the child if none runs and have it load what an invoice needs, once per child: the
        future (done when it has) gives its pid and the invoice model it loaded, or None and why not."""
        pool = self._executor()
        with self._lock:
            if self._warming is None or self._warming[0] is not pool:
                self._warming = (pool, pool.submit(_warm))
            return self._warming[1]

    def child_pids(self) -> list[int]:
        """The running child's process id, if one has started (for tests and diagnostics)."""
        pool = self._pool
        return list(getattr(pool, "_processes", None) or {}) if pool is not None else []

    def decide(self, invoices: list, *, header_key: str | None, caller: str | None) -> list[dict]:
        with self._lock:
            self._in_flight += 1
        try:
            for attempt in (1, 2):
                pool = self._executor()
                try:
                    status, value = pool.submit(_decide, invoices, header_key, caller).result()
                    break
                except BrokenProcessPool:
                    self._discard(pool)
                    if attempt == 2:
                        raise InvoiceWorkerUnavailable("the invoice process stopped twice on this request; "
                                                       "retry it (nothing is decided twice)") from None
        finally:
            with self._lock:
                self._in_flight -= 1
        return _answer(status, value, "invoice decision")

    def try_decide_shipments(self, requests: list, *, header_key: str | None,
                             caller: str | None) -> tuple[list[dict], list] | None:
        """A shipment batch decided in the child (metric labels and logged JSON of each decision), or None
        when the child cannot take it at once: busy with another request, not started or not warmed yet
        (its first batch would wait for the model), or dead. The worker then decides the batch itself; a
        batch a dying child had recorded is found there by its idempotency keys."""
        warmed = self.warm()  # a child started anew (after one died) begins warming here
        if not (warmed.done() and warmed.exception() is None and warmed.result().get("delay_model")):
            return None
        with self._lock:
            pool = self._pool
            if pool is None or self._in_flight:
                return None
            self._in_flight += 1
        try:
            status, value = pool.submit(_decide_shipments, requests, header_key, caller).result()
        except BrokenProcessPool:
            self._discard(pool)
            return None
        finally:
            with self._lock:
                self._in_flight -= 1
        return _answer(status, value, "shipment batch")

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _answer(status: str, value, what: str):
    """The child's answer as the worker's own: the value, or the error raised again."""
    from sqlalchemy.exc import OperationalError

    if status == "error":
        raise value
    if status == "database":
        raise OperationalError(what, {}, Exception(value))
    return value
