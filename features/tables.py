"""All delay-risk feature tables from history and weather (pure; the Feast wiring is in ``store``)."""

from __future__ import annotations

import pandas as pd

from features import live, transforms
from features.history import late_label


def live_queries(history: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """Times at which live snapshots are needed offline: every historical decision time."""
    return pd.DataFrame({"key": keys.to_numpy(),
                         "at": transforms.decision_times(history["scheduled_departure"]).to_numpy()})


def lane_carriers(history: pd.DataFrame, *, days: int = 90) -> dict[str, list[str]]:
    """Carriers that served each lane in the last ``days`` days of history (reroute candidates)."""
    recent = history[history["scheduled_departure"] >= history["scheduled_departure"].max() - pd.Timedelta(days=days)]
    lanes = transforms.lane_key(recent["origin"], recent["destination"])
    grouped = recent.groupby(lanes.to_numpy())["carrier"].unique()
    return {lane: sorted(str(c) for c in carriers) for lane, carriers in grouped.items()}


def build_feature_tables(history: pd.DataFrame, weather: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per Feast feature view: entity key, ``event_timestamp`` and value columns."""
    late = late_label(history)
    lane = transforms.lane_key(history["origin"], history["destination"])
    carrier_origin = transforms.carrier_origin_key(history["carrier"], history["origin"])
    return {
        "carrier_perf": transforms.trailing_performance(history, late, key=history["carrier"],
                                                        prefix="carrier"),
        "lane_perf": transforms.trailing_performance(history, late, key=lane, prefix="lane"),
        "origin_weather": transforms.weather_table(weather),
        "origin_schedule": transforms.scheduled_congestion(history),
        "origin_live": live.live_congestion(history, group=history["origin"],
                                            queries=live_queries(history, history["origin"]),
                                            key_name="origin", prefix="origin_live"),
        "carrier_live": live.live_congestion(history, group=carrier_origin,
                                             queries=live_queries(history, carrier_origin),
                                             key_name="carrier_origin", prefix="carrier_live"),
        "dest_live": live.destination_live(history, queries=live_queries(history, history["destination"])),
        "equipment_rotation": live.equipment_rotation(history),
    }
