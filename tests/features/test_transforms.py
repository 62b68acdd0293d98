import numpy as np
import pandas as pd

from features.transforms import (
    entity_frame,
    lane_key,
    origin_hour_key,
    outcome_known_at,
    request_features,
    scheduled_congestion,
    trailing_performance,
    weather_table,
)
from features.history import late_label
from tests.conftest import frame, shipment

# Local midnight (America/New_York, EST) of 10 January 2013 is 05:00 UTC.
JAN10 = pd.Timestamp("2013-01-10T05:00Z")


def _row(table: pd.DataFrame, key: str, at: pd.Timestamp) -> pd.Series:
    hit = table[(table.iloc[:, 0] == key) & (table["event_timestamp"] == at)]
    assert len(hit) == 1, f"expected one row for {key} at {at}, got {len(hit)}"
    return hit.iloc[0]


def test_trailing_performance_counts_only_outcomes_known_before_the_day():
    h = frame([
        shipment("a", dep="2013-01-08T15:00Z", arr_delay=30.0),    # late, known 8 Jan
        shipment("b", dep="2013-01-09T15:00Z", arr_delay=0.0),     # on time, known 9 Jan
        shipment("c", dep="2013-01-09T15:00Z", dep_delay=None),    # cancelled: late
        shipment("red-eye", dep="2013-01-10T03:00Z", arr="2013-01-10T09:00Z", arr_delay=60.0),  # 9 Jan local,
        shipment("today", dep="2013-01-10T15:00Z", arr_delay=500.0),  # lands after midnight: next day's row
    ])
    table = trailing_performance(h, late_label(h), key=h["carrier"], prefix="carrier")
    jan10 = _row(table, "AA", JAN10)
    assert jan10["carrier_volume_30d"] == 3  # a, b, c; the red-eye had not landed at midnight
    assert jan10["carrier_late_rate_30d"] == 2 / 3
    assert jan10["carrier_mean_delay_30d"] == 15.0  # (30 + 0) / 2 arrived
    jan11 = _row(table, "AA", JAN10 + pd.Timedelta(days=1))
    assert jan11["carrier_volume_30d"] == 4 and jan11["carrier_late_rate_30d"] == 3 / 4
    jan12 = _row(table, "AA", JAN10 + pd.Timedelta(days=2))
    assert jan12["carrier_volume_30d"] == 5


def test_trailing_window_forgets_after_thirty_days():
    h = frame([shipment("old", dep="2013-01-01T15:00Z", arr_delay=40.0),
               shipment("new", dep="2013-01-20T15:00Z", arr_delay=0.0)])
    table = trailing_performance(h, late_label(h), key=h["carrier"], prefix="carrier")
    # "old" (1 Jan) is in the rows of 2..31 January and gone from 1 February on.
    assert _row(table, "AA", pd.Timestamp("2013-01-31T05:00Z"))["carrier_volume_30d"] == 2
    assert _row(table, "AA", pd.Timestamp("2013-02-01T05:00Z"))["carrier_volume_30d"] == 1


def test_lane_keys_and_origin_hour_keys():
    h = frame([shipment("x", origin="EWR", dest="IAH", dep="2013-01-01T10:15Z")])
    assert lane_key(h["origin"], h["destination"]).tolist() == ["EWR-IAH"]
    assert origin_hour_key(h["origin"], h["scheduled_departure"]).tolist() == ["EWR@2013010110"]


def test_scheduled_congestion_counts_hour_and_local_day_and_is_published_the_day_before():
    h = frame([
        shipment("a", dep="2013-01-02T14:05Z"), shipment("b", dep="2013-01-02T14:55Z"),
        shipment("c", dep="2013-01-02T15:10Z"), shipment("other-origin", origin="EWR", dep="2013-01-02T14:10Z"),
        shipment("next-local-day", dep="2013-01-03T06:00Z"),
    ])
    table = scheduled_congestion(h).set_index("origin_hour")
    assert table.loc["JFK@2013010214", "sched_departures_origin_hour"] == 2
    assert table.loc["JFK@2013010214", "sched_departures_origin_day"] == 3
    assert table.loc["JFK@2013010306", "sched_departures_origin_day"] == 1
    assert table.loc["JFK@2013010214", "event_timestamp"] == pd.Timestamp("2013-01-01T05:00Z")


def test_outcome_known_at_for_arrival_cancellation_and_diversion():
    h = frame([shipment("arr", dep="2013-01-01T12:00Z", arr_delay=20.0),
               shipment("cx", dep="2013-01-01T12:00Z", dep_delay=None),
               shipment("div", dep="2013-01-01T12:00Z", arr_delay=None)])
    known = outcome_known_at(h).tolist()
    assert known == [pd.Timestamp("2013-01-01T18:20Z"), pd.Timestamp("2013-01-01T12:00Z"),
                     pd.Timestamp("2013-01-01T18:15Z")]


def test_request_features_read_only_the_request():
    h = frame([shipment("x", dep="2013-07-04T13:30Z", arr="2013-07-04T19:00Z", distance=1000.0)])
    row = request_features(h).iloc[0]
    assert row["sched_dep_hour"] == 9.5  # 09:30 EDT
    assert row["sched_day_of_week"] == 3  # Thursday
    assert row["sched_block_minutes"] == 330 and row["distance_miles"] == 1000.0


def test_entity_frame_uses_decision_time_two_hours_before_departure():
    h = frame([shipment("x", dep="2013-01-01T12:00Z", tail=None)])
    row = entity_frame(h).iloc[0]
    assert row["event_timestamp"] == pd.Timestamp("2013-01-01T10:00Z")
    assert row["equipment_id"] == "UNKNOWN" and row["carrier_origin"] == "AA@JFK"


def test_weather_table_is_stamped_at_observation():
    w = pd.DataFrame({"origin": ["JFK"], "observed_at": [pd.Timestamp("2013-01-01T06:00Z")], "temp": [39.0],
                      "dewp": [26.0], "humid": [59.0], "wind_speed": [10.0], "wind_gust": [np.nan],
                      "precip": [0.0], "pressure": [1012.0], "visib": [10.0]})
    out = weather_table(w)
    assert out.loc[0, "event_timestamp"] == pd.Timestamp("2013-01-01T06:00Z")
    assert out.loc[0, "weather_temp"] == 39.0 and np.isnan(out.loc[0, "weather_wind_gust"])
