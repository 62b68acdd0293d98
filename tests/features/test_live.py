import numpy as np
import pandas as pd

from features.live import derive_features, destination_live, equipment_rotation, live_congestion, window_stats
from tests.conftest import frame, shipment

T0 = pd.Timestamp("2013-01-01T12:00Z")


def _ns(*minutes_after_t0):
    return np.array([(T0 + pd.Timedelta(minutes=m)).value if m is not None else np.iinfo(np.int64).max
                     for m in minutes_after_t0], dtype=np.int64)


def test_window_stats_by_hand():
    # scheduled at -100, -50, -30, -10, +5 minutes; departed at -90 (10 late), -20 (30 late), never,
    # +5 (after the query), -2 (7 early, before its own scheduled time)
    scheduled = _ns(-100, -50, -30, -10, 5)
    departed = _ns(-90, -20, None, 5, -2)
    stats = window_stats(scheduled=scheduled, departed=departed, at=_ns(0))
    assert stats["departures_60m"].tolist() == [2.0]          # -20 and -2; -90 is too old
    assert stats["mean_dep_delay_60m"].tolist() == [11.5]     # (30 + -7) / 2
    assert stats["max_dep_delay_60m"].tolist() == [30.0]
    assert stats["undeparted_120m"].tolist() == [2.0]         # the cancelled -30 and the -10 leaving at +5
    assert stats["undeparted_mean_wait_120m"].tolist() == [20.0]  # (30 + 10) / 2


def test_window_stats_empty_windows_are_zero_or_missing():
    stats = window_stats(scheduled=_ns(-500), departed=_ns(-490), at=_ns(0))
    assert stats["departures_60m"][0] == 0 and np.isnan(stats["mean_dep_delay_60m"][0])
    assert stats["undeparted_120m"][0] == 0 and np.isnan(stats["undeparted_mean_wait_120m"][0])


def test_live_congestion_rows_are_per_key_and_time():
    h = frame([shipment("a", origin="JFK", dep="2013-01-01T11:30Z", dep_delay=15.0),
               shipment("b", origin="EWR", dep="2013-01-01T11:30Z", dep_delay=20.0)])
    queries = pd.DataFrame({"key": ["JFK", "EWR", "JFK"], "at": [T0, T0, T0]})
    out = live_congestion(h, group=h["origin"], queries=queries, key_name="origin", prefix="origin_live")
    assert len(out) == 2
    by_origin = out.set_index("origin")
    assert by_origin.loc["JFK", "origin_live_mean_dep_delay_60m"] == 15.0
    assert by_origin.loc["EWR", "origin_live_mean_dep_delay_60m"] == 20.0
    assert (out["event_timestamp"] == T0).all()


def test_destination_live_counts_arrivals_known_at_the_time():
    h = frame([shipment("landed", dest="ORD", dep="2013-01-01T08:00Z", arr="2013-01-01T10:30Z", arr_delay=40.0),
               shipment("in-air", dest="ORD", dep="2013-01-01T09:00Z", arr="2013-01-01T11:30Z", arr_delay=45.0),
               shipment("old", dest="ORD", dep="2013-01-01T04:00Z", arr="2013-01-01T06:00Z", arr_delay=0.0)])
    out = destination_live(h, queries=pd.DataFrame({"key": ["ORD"], "at": [T0]}))
    assert out.loc[0, "dest_live_arrivals_180m"] == 1  # landed 11:10; in-air lands 12:15; old too early
    assert out.loc[0, "dest_live_mean_arr_delay_180m"] == 40.0


def test_equipment_rotation_is_stamped_when_the_departure_happened():
    h = frame([shipment("a", tail="N1", dep="2013-01-01T10:00Z", dep_delay=25.0),
               shipment("b", tail="N1", dep="2013-01-01T16:00Z", dep_delay=None),
               shipment("c", tail=None, dep="2013-01-01T11:00Z")])
    out = equipment_rotation(h)
    assert out["equipment_id"].tolist() == ["N1"]
    assert out.loc[0, "event_timestamp"] == pd.Timestamp("2013-01-01T10:25Z")
    assert out.loc[0, "eq_last_dep_delay"] == 25.0


def test_derive_minutes_since_the_equipment_last_departed():
    looked_up = pd.DataFrame({"eq_last_departure_epoch": [pd.Timestamp("2013-01-01T10:25Z").timestamp(), np.nan],
                              "eq_last_sched_block_minutes": [60.0, np.nan]})
    out = derive_features(looked_up, pd.Series([pd.Timestamp("2013-01-01T12:00Z")] * 2))
    assert out["eq_minutes_since_last_departure"].iloc[0] == 95.0
    # left 95 min ago on a 60-min leg, departs again in 120 min: 95 + 120 - 2 * 60 = 95 min of slack
    assert out["eq_rotation_slack_minutes"].iloc[0] == 95.0
    assert np.isnan(out["eq_minutes_since_last_departure"].iloc[1])
    assert "eq_last_departure_epoch" not in out


def test_derive_drops_an_equipment_row_from_after_the_decision_time():
    decision = pd.Timestamp("2013-01-01T12:00Z")
    looked_up = pd.DataFrame({
        "eq_last_dep_delay": [12.0, 30.0, 5.0],
        "eq_last_departure_epoch": [(decision + pd.Timedelta(minutes=m)).timestamp() for m in (-30, 10, 0)],
        "eq_last_sched_block_minutes": [60.0, 60.0, 45.0]})
    out = derive_features(looked_up, pd.Series([decision] * 3))
    assert out["eq_minutes_since_last_departure"].iloc[0] == 30.0
    assert out["eq_last_dep_delay"].iloc[0] == 12.0
    later = out.iloc[1]
    assert later[["eq_last_dep_delay", "eq_last_sched_block_minutes", "eq_minutes_since_last_departure",
                  "eq_rotation_slack_minutes"]].isna().all()
    assert out["eq_minutes_since_last_departure"].iloc[2] == 0.0  # departed at the decision time: known
    assert looked_up["eq_last_dep_delay"].iloc[1] == 30.0  # the input frame is not changed
