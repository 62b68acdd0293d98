"""Events recompute live snapshots with the training functions and push them to Feast's online store."""

from datetime import datetime, timedelta, timezone

import pytest

from features import store as feature_store
from features.history import read_weather
from features.tables import build_feature_tables
from serving import live_updates
from serving.auth import Role

pytestmark = pytest.mark.integration
T0 = datetime(2013, 3, 5, 17, 0, tzinfo=timezone.utc)


@pytest.fixture
def online(tmp_path, march_sample, api):
    settings = feature_store.StoreSettings(repo_dir=tmp_path / "repo")
    feature_store.write_tables(build_feature_tables(march_sample.head(2000), read_weather()), settings.data_dir)
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    api.runtime._store = store
    return store


def _event(i, kind, at, **extra):
    return {"event_id": f"e-{i}", "type": kind, "shipment_id": f"S-{i}", "occurred_at": at.isoformat(), **extra}


def test_departures_update_origin_and_carrier_live_features(api, online):
    headers = api.headers_for(Role.ORCHESTRATOR)
    for i, delay in enumerate([10, 50]):
        sched = T0 - timedelta(minutes=40 - i)
        r = api.post("/events", headers=headers, json=_event(
            i, "departed", sched + timedelta(minutes=delay) if delay < 40 else T0,
            carrier="AA", origin="JFK", destination="LAX", scheduled_at=sched.isoformat()))
        assert r.status_code == 200, r.text
    assert r.json()["updated_views"] == ["carrier_live", "dest_live", "origin_live"]
    rows = feature_store.online_features(online, [{"carrier": "AA", "lane": "JFK-LAX", "origin": "JFK",
                                                   "carrier_origin": "AA@JFK", "origin_hour": "JFK@2013030519",
                                                   "equipment_id": "X", "destination": "LAX"}])
    assert rows.loc[0, "origin_live_departures_60m"] == 2
    assert rows.loc[0, "origin_live_mean_dep_delay_60m"] == pytest.approx((10 + 39) / 2)
    assert rows.loc[0, "carrier_live_max_dep_delay_60m"] == pytest.approx(39)


def test_snapshot_matches_the_training_computation(api, online):
    # same movements through the offline function and through the event path
    headers = api.headers_for(Role.ORCHESTRATOR)
    moves = [(-100, 5), (-70, None), (-30, 25), (-10, None)]
    for i, (offset, delay) in enumerate(moves):
        sched = T0 + timedelta(minutes=offset)
        payload = _event(100 + i, "departed" if delay is not None else "service_event",
                         sched + timedelta(minutes=delay or 0), carrier="DL", origin="LGA", destination="ATL",
                         scheduled_at=sched.isoformat())
        assert api.post("/events", headers=headers, json=payload).status_code == 200
    frames = live_updates.snapshots(api.runtime.engine, origin="LGA", carrier="DL", destination="ATL", at=T0)
    got = frames["origin_live"].iloc[0]
    assert got["origin_live_departures_60m"] == 1          # only the -30 departure at -5 is in the last hour
    assert got["origin_live_undeparted_120m"] == 2         # -70 and -10 have not departed
    assert got["origin_live_undeparted_mean_wait_120m"] == 40.0


def test_event_is_idempotent_and_unknown_shipment_needs_its_schedule(api, online):
    headers = api.headers_for(Role.ORCHESTRATOR)
    body = _event(7, "departed", T0, carrier="UA", origin="EWR", destination="ORD",
                  scheduled_at=(T0 - timedelta(minutes=5)).isoformat())
    assert api.post("/events", headers=headers, json=body).json()["accepted"] is True
    assert api.post("/events", headers=headers, json=body).json()["accepted"] is False
    bare = _event(8, "departed", T0)
    r = api.post("/events", headers=headers, json=bare)
    assert r.status_code == 422 and "carrier" in r.json()["detail"]
    assert api.post("/events", headers=api.headers_for(Role.REVIEWER), json=body).status_code == 403
