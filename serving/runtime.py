"""Process-wide wiring built on first use (never at import): database, policies, scorers, auth cache."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from features import store as feature_store
from features.errors import ModelUnavailable
from serving.auth import Caller, authenticate
from serving.db import create_schema, make_engine
from serving.decisions import DecisionService
from serving.otel import freeze_long_lived
from serving.policy_store import PolicySource
from serving.reviews import ReviewService
from serving.scoring import DelayScorer, LoadedModel, load_champion, load_model

ROOT = Path(__file__).resolve().parent.parent
UNCACHED = object()


def database_url() -> str:
    default = ROOT / "var" / "tollgate.db"
    default.parent.mkdir(parents=True, exist_ok=True)
    return os.environ.get("TOLLGATE_DATABASE_URL", f"sqlite:///{default}")


def mlflow_uri() -> str:
    return os.environ.get("TOLLGATE_MLFLOW_URI", f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}")


def invoice_nice() -> int:
    """How much lower the invoice process's CPU priority is than its worker's (``TOLLGATE_INVOICE_NICE``,
    default 5): shipments at dispatch are the decisions waited on (docs/decisions.md, session 12)."""
    text = os.environ.get("TOLLGATE_INVOICE_NICE", "5").strip()
    try:
        nice = int(text)
    except ValueError:
        raise ValueError(f"TOLLGATE_INVOICE_NICE must be a whole number from 0 to 19, not {text!r}") from None
    if not 0 <= nice <= 19:
        raise ValueError(f"TOLLGATE_INVOICE_NICE must be a whole number from 0 to 19, not {text!r}")
    return nice


@dataclass
class Runtime:
    engine: Engine
    decisions: DecisionService
    tracking_uri: str = ""
    store_settings: feature_store.StoreSettings | None = None
    model_retry_seconds: float = 30.0
    _scorer: DelayScorer | None = None
    _failed_at: float = 0.0
    _store: object | None = None
    _invoice: object | None = None
    _invoice_failed_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _keys: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)
    _reviews: ReviewService | None = None
    _versions: dict[tuple[str, str], LoadedModel] = field(default_factory=dict)
    invoice_process: object | None = None  # serving.invoice_process.InvoiceProcess, or decide in-process
    _batch_slot: threading.Lock = field(default_factory=threading.Lock)

    @property
    def reviews(self) -> ReviewService:
        """The review workflow over the same database and policies (built on first use)."""
        if self._reviews is None:
            self._reviews = ReviewService(self.engine, policies=self.decisions.policies)
        return self._reviews

    def cached_caller(self, authorization: str | None) -> Caller | None | object:
        """The cached answer for this key if it is fresh, else ``UNCACHED`` (no database access)."""
        hit = self._keys.get(authorization or "")
        return hit[1] if hit and time.monotonic() - hit[0] < 30 else UNCACHED

    def caller(self, authorization: str | None) -> Caller | None:
        """Authenticate with a 30-second cache (revocation takes effect within that time)."""
        cached = self.cached_caller(authorization)
        if cached is not UNCACHED:
            return cached
        now = time.monotonic()
        caller = authenticate(self.engine, authorization)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[authorization or ""] = (now, caller)
        return caller

    def model_version(self, name: str, version: str) -> LoadedModel:
        """A registered model version (for explaining logged decisions), loaded once per process."""
        key = (name, str(version))
        with self._lock:
            model = self._versions.get(key)
            if model is None:
                model = load_model(name, self.tracking_uri, version=str(version))
                if len(self._versions) >= 4:
                    self._versions.clear()
                self._versions[key] = model
        return model

    def online_store(self):
        """The Feast store used for online reads and pushes (shared with the scorer once loaded)."""
        if self._scorer is not None:
            return self._scorer.store
        if self._store is None:
            self._store = feature_store.open_store(self.store_settings)
        return self._store

    def invoice_scorer(self):
        """The champion invoice scorer (same retry rule as the delay scorer)."""
        from serving.invoice_scoring import InvoiceScorer

        if self._invoice is None:
            if self._invoice_failed_at and time.monotonic() - self._invoice_failed_at < self.model_retry_seconds:
                raise ModelUnavailable("invoice model unavailable (retrying later)")
            try:
                model = load_champion("invoice_discrepancy", self.tracking_uri)
            except ModelUnavailable:
                self._invoice_failed_at = time.monotonic()
                raise
            self._invoice = InvoiceScorer(model, self.online_store(), self.engine)
            freeze_long_lived()
        return self._invoice

    def decide_invoices(self, requests: list, *, header_key: str | None, caller: str | None) -> list[dict]:
        """Invoice decisions, in the invoice process if this runtime has one (serving/invoice_process.py)."""
        if self.invoice_process is not None:
            return self.invoice_process.decide(requests, header_key=header_key, caller=caller)
        from serving.invoice_decisions import decide_invoices

        return decide_invoices(self.decisions, self.invoice_scorer, requests, header_key=header_key, caller=caller)

    def decide_shipment_batch(self, requests: list, *, header_key: str | None,
                              caller: str | None) -> tuple[list[dict], list, str]:
        """A batch's decisions (at least what metrics count of each), their logged JSON texts, and where
        they were decided. One batch at a time is decided on this worker's threads; one arriving meanwhile
        goes to the invoice process if it is idle (there it has a core to itself, here it would share the
        GIL with the first: serving/invoice_process.py), else it is decided here too."""
        if self._batch_slot.acquire(blocking=False):
            try:
                return (*self._decide_shipments_here(requests, header_key=header_key, caller=caller), "worker")
            finally:
                self._batch_slot.release()
        if self.invoice_process is not None:
            sent = self.invoice_process.try_decide_shipments(requests, header_key=header_key, caller=caller)
            if sent is not None:
                return (*sent, "side_process")
        return (*self._decide_shipments_here(requests, header_key=header_key, caller=caller), "worker")

    def _decide_shipments_here(self, requests: list, *, header_key: str | None,
                               caller: str | None) -> tuple[list[dict], list]:
        texts: list = []
        done = self.decisions.decide_shipments(requests, header_key=header_key, caller=caller, encoded=texts)
        return done, texts

    def invoices_ready(self) -> bool:
        """True once invoices need no start-up work: at once on the thread pool; with the invoice
        process once its child has loaded what it can (the first call starts it warming)."""
        if self.invoice_process is None:
            return True
        return self.invoice_process.warm().done()

    @property
    def delay_scorer_loaded(self) -> bool:
        return self._scorer is not None

    def delay_scorer(self) -> DelayScorer:
        """The champion scorer; a failed load is retried after ``model_retry_seconds``."""
        if self._scorer is not None:
            return self._scorer
        with self._lock:
            if self._scorer is None:
                if time.monotonic() - self._failed_at < self.model_retry_seconds and self._failed_at:
                    raise ModelUnavailable("delay model unavailable (retrying later)")
                try:
                    settings = self.store_settings
                    model = load_champion("delay_risk", self.tracking_uri)
                    self._scorer = DelayScorer(model, feature_store.open_store(settings),
                                               feature_store.read_lane_carriers(settings.data_dir))
                    freeze_long_lived()
                except ModelUnavailable:
                    self._failed_at = time.monotonic()
                    raise
        return self._scorer


def build_runtime(url: str | None = None, *, invoice_process: bool = False) -> Runtime:
    """Configuration is read once, here (environment), and kept by the runtime. ``invoice_process``:
    invoices are decided in a child process on the same database (the service's choice, not tests')."""
    url = url or database_url()
    engine = make_engine(url)
    create_schema(engine)
    runtime = Runtime(engine=engine, decisions=None, tracking_uri=mlflow_uri(),  # type: ignore[arg-type]
                      store_settings=feature_store.StoreSettings.from_env())
    runtime.decisions = DecisionService(engine=engine, policies=PolicySource(engine),
                                        delay_scorer=runtime.delay_scorer)
    if invoice_process:
        from serving.invoice_process import InvoiceProcess

        runtime.invoice_process = InvoiceProcess(url, tracking_uri=runtime.tracking_uri,
                                                 store_settings=runtime.store_settings, nice=invoice_nice())
    return runtime
