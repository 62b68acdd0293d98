"""A feature repository of its own, written, applied and materialized: the online store the reader tests read."""

import uuid
from pathlib import Path

import pandas as pd

from features import store as feature_store
from features.history import read_weather
from features.tables import build_feature_tables
from training.features_job import materialize_features


def materialized_store(repo_dir: Path, sample: pd.DataFrame, *, online: str,
                       prefix: str) -> tuple[feature_store.StoreSettings, object]:
    """Settings and store of a fresh project (``prefix`` and a random suffix, so Redis keys never collide)."""
    settings = feature_store.StoreSettings(repo_dir=repo_dir, online=online, project=f"{prefix}{uuid.uuid4().hex[:10]}")
    feature_store.write_tables(build_feature_tables(sample, read_weather()), settings.data_dir)
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    materialize_features(settings=settings)
    return settings, store
