"""Feast integration: apply, point-in-time join, materialize, online read, push — on SQLite and Redis."""

import uuid

import numpy as np
import pandas as pd
import pytest
import redis

from features import store as feature_store
from features.history import read_weather
from features.live import LIVE_COLUMNS
from features.tables import build_feature_tables
from features.transforms import entity_frame
from training.features_job import materialize_features

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tables(march_sample):
    return build_feature_tables(march_sample, read_weather())


def _settings(tmp_path, online: str) -> feature_store.StoreSettings:
    project = f"t{uuid.uuid4().hex[:10]}"
    return feature_store.StoreSettings(repo_dir=tmp_path / "repo", project=project, online=online)


@pytest.fixture(params=["sqlite", "redis"])
def applied(request, tmp_path, tables):
    settings = _settings(tmp_path, request.param)
    if request.param == "redis":
        client = redis.Redis(host="127.0.0.1", port=6379)
        client.ping()
    feature_store.write_tables(tables, settings.data_dir)
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    yield settings, store
    if request.param == "redis":
        store.teardown()


def test_historical_join_returns_the_latest_row_known_at_decision_time(applied, march_sample, tables):
    settings, store = applied
    sample = march_sample.sample(300, random_state=7).sort_values("scheduled_departure")
    joined = feature_store.historical_features(store, entity_frame(sample))
    assert list(joined["shipment_id"]) == list(sample["shipment_id"])
    lane = tables["lane_perf"]
    for _, row in joined.head(40).iterrows():
        known = lane[(lane["lane"] == row["lane"]) & (lane["event_timestamp"] <= row["event_timestamp"])
                     & (lane["event_timestamp"] > row["event_timestamp"] - pd.Timedelta(days=2))]
        expected = known.iloc[-1]["lane_volume_30d"] if len(known) else np.nan
        assert row["lane_volume_30d"] == pytest.approx(expected, nan_ok=True)
    live = tables["origin_live"].set_index(["origin", "event_timestamp"])
    for _, row in joined.head(40).iterrows():
        assert row["origin_live_undeparted_120m"] == live.loc[(row["origin"], row["event_timestamp"]),
                                                              "origin_live_undeparted_120m"]


def test_materialize_then_online_read_and_push(applied, tables):
    settings, store = applied
    materialize_features(settings=settings)
    rows = [{"carrier": "UA", "lane": "EWR-IAH", "origin": "EWR", "carrier_origin": "UA@EWR",
             "origin_hour": "EWR@2013031014", "equipment_id": "N14228", "destination": "IAH"},
            {"carrier": "ZZ", "lane": "XXX-YYY", "origin": "XXX", "carrier_origin": "ZZ@XXX",
             "origin_hour": "XXX@2013031014", "equipment_id": "NOPE", "destination": "YYY"}]
    online = feature_store.online_features(store, rows)
    carrier = tables["carrier_perf"]
    latest_ua = carrier[carrier["carrier"] == "UA"].iloc[-1]
    assert online.loc[0, "carrier_volume_30d"] == latest_ua["carrier_volume_30d"]
    assert pd.isna(online.loc[1, "carrier_volume_30d"])  # unknown carrier: missing, not an error
    pushed = pd.DataFrame({"origin": ["EWR"], "event_timestamp": [pd.Timestamp.now(tz="UTC")],
                           **{f"origin_live_{c}": [42.0] for c in LIVE_COLUMNS}})
    store.push("origin_live_push", pushed)
    after = feature_store.online_features(store, rows[:1])
    assert after.loc[0, "origin_live_undeparted_120m"] == 42.0
