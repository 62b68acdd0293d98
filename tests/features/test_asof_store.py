"""The as-of offline store returns exactly what Feast's stock DuckDB point-in-time join returns."""

import pandas as pd
import pytest

from features import store as feature_store
from features.history import read_weather
from features.tables import build_feature_tables
from features.transforms import entity_frame

pytestmark = pytest.mark.integration


def test_asof_join_equals_the_stock_duckdb_join(tmp_path, march_sample):
    tables = build_feature_tables(march_sample, read_weather())
    # decisions across the sample, some keys unknown to every table, some older than every TTL
    decisions = entity_frame(march_sample.sample(1500, random_state=11))
    decisions.loc[decisions.index[:5], ["carrier", "lane", "equipment_id"]] = ["ZZ", "XXX-YYY", "NONE"]
    decisions.loc[decisions.index[5:10], "event_timestamp"] = pd.Timestamp("2013-06-01T00:00Z")
    results = {}
    for offline in ("asof", "duckdb"):
        settings = feature_store.StoreSettings(repo_dir=tmp_path / offline, offline=offline)
        feature_store.write_tables(tables, settings.data_dir)
        store = feature_store.open_store(settings)
        feature_store.apply(store, settings)
        results[offline] = feature_store.historical_features(store, decisions)
    asof, stock = results["asof"], results["duckdb"]
    assert list(asof.columns) == list(stock.columns)
    pd.testing.assert_frame_equal(asof, stock, check_dtype=False)
    assert asof["carrier_volume_30d"].isna().sum() >= 5  # unknown keys and stale rows come back missing
