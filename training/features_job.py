"""Feature-store jobs: build tables, materialize to the online store, and the first-start bootstrap."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd

from features import store as feature_store
from features.feast_defs import TABLES, table_path
from features.history import load_embedded_history, read_history, read_weather
from features.tables import build_feature_tables, lane_carriers

Step = Callable[[str], None]


def build_features(*, history_path: Path | None = None, settings: feature_store.StoreSettings | None = None,
                   step: Step = lambda _: None) -> dict:
    """Validate history, write every feature table, apply the Feast definitions."""
    settings = settings or feature_store.StoreSettings.from_env()
    started = time.perf_counter()
    step("loading and validating history")
    history = read_history(history_path) if history_path else load_embedded_history()
    step("computing feature tables")
    tables = build_feature_tables(history, read_weather())
    feature_store.write_tables(tables, settings.data_dir)
    feature_store.write_lane_carriers(lane_carriers(history), settings.data_dir)
    feature_store.apply(feature_store.open_store(settings), settings)
    return {"rows": {name: len(frame) for name, frame in tables.items()},
            "repo": str(settings.repo_dir), "seconds": round(time.perf_counter() - started, 2)}


def data_time_range(settings: feature_store.StoreSettings) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Earliest and latest event timestamp over all feature tables."""
    stamps = [pd.read_parquet(table_path(settings.data_dir, t), columns=["event_timestamp"])["event_timestamp"]
              for t in TABLES]
    return min(s.min() for s in stamps), max(s.max() for s in stamps)


def materialize_features(*, settings: feature_store.StoreSettings | None = None,
                         step: Step = lambda _: None) -> dict:
    """Materialize the latest value of every entity into the online store."""
    settings = settings or feature_store.StoreSettings.from_env()
    if not table_path(settings.data_dir, TABLES[0]).exists():
        build_features(settings=settings, step=step)
    start, end = data_time_range(settings)
    step(f"materializing {start:%Y-%m-%d}..{end:%Y-%m-%d} into the {settings.online} online store")
    started = time.perf_counter()
    store = feature_store.open_store(settings)
    feature_store.materialize(store, start=start.to_pydatetime() - timedelta(days=1),
                              end=end.to_pydatetime() + timedelta(seconds=1))
    return {"online_store": settings.online, "start": str(start), "end": str(end),
            "materialize_seconds": round(time.perf_counter() - started, 2)}


def has_champion(model_name: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training import tracking

    tracking.configure()
    try:
        MlflowClient().get_model_version_by_alias(model_name, tracking.CHAMPION)
    except MlflowException:
        return False
    return True


def bootstrap_invoices(*, settings: feature_store.StoreSettings, step: Step) -> dict:
    """Train and promote the invoice model if none is champion; load the embedded world's reference data."""
    from features.invoice_world import save_world
    from training import tracking
    from training.invoice_job import load_invoice_world, run_invoice_job
    from training.invoice_spec import load_invoice_spec
    from training.load_job import load_reference

    result: dict = {}
    spec = load_invoice_spec("invoice")
    if not has_champion("invoice_discrepancy"):
        summary = run_invoice_job(spec, settings=settings, step=step)
        result |= {"invoice_model_version": summary["model_version"], "invoice_macro_f1": summary["macro_f1"],
                   "invoice_promoted": tracking.promote("invoice_discrepancy").promoted}
    if not (settings.data_dir / "shipment_facts.parquet").exists():
        world, _ = load_invoice_world(spec, step=step)
        files = save_world(world, settings.repo_dir / "world")
        for kind, name in (("contracts", "contracts"), ("shipments", "shipment_facts"),
                           ("fuel-index", "fuel_index")):
            step(f"loading embedded {kind} into the feature store")
            load_reference(kind, files[name], settings=settings)
        result["reference_data_loaded"] = True
    return result


def bootstrap(*, step: Step = lambda _: None) -> dict:
    """Train and promote the models when none is champion; materialize features; load reference data."""
    from training import tracking
    from training.delay_job import run_delay_job
    from training.spec import load_spec

    result: dict = {}
    if has_champion("delay_risk"):
        step("delay_risk already has a champion: skipping training")
        result["trained"] = False
    else:
        summary = run_delay_job(load_spec("delay"), step=step)
        promotion = tracking.promote("delay_risk")
        result |= {"trained": True, "model_version": summary["model_version"],
                   "test_auc": summary["test_auc"], "promoted": promotion.promoted}
    result |= materialize_features(step=step)
    result |= bootstrap_invoices(settings=feature_store.StoreSettings.from_env(), step=step)
    return result
