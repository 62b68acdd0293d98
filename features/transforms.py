"""Pure feature transforms over canonical shipment history.

Every function here takes frames and returns frames: no I/O, no clock. Each produces a *feature table*
(entity key, ``event_timestamp``, values) whose timestamp is the moment the values became known, so the
Feast point-in-time join can never hand a decision something learned after it was taken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import DECISION_LEAD_MINUTES

BUSINESS_TIMEZONE = "America/New_York"
TRAILING_DAYS = 30
DAY = pd.Timedelta(days=1)


def lane_key(origin: pd.Series, destination: pd.Series) -> pd.Series:
    """Lane entity key, e.g. ``EWR-IAH``."""
    return origin.astype(str) + "-" + destination.astype(str)


def carrier_origin_key(carrier: pd.Series, origin: pd.Series) -> pd.Series:
    """Carrier-at-origin entity key, e.g. ``UA@EWR``."""
    return carrier.astype(str) + "@" + origin.astype(str)


def origin_hour_key(origin: pd.Series, scheduled_departure: pd.Series) -> pd.Series:
    """Origin and UTC hour of the scheduled departure, e.g. ``EWR@2013010110``."""
    utc = scheduled_departure.dt.tz_convert("UTC")
    stamp = utc.dt.year * 1_000_000 + utc.dt.month * 10_000 + utc.dt.day * 100 + utc.dt.hour
    return origin.astype(str) + "@" + stamp.astype(str)


def outcome_known_at(history: pd.DataFrame) -> pd.Series:
    """When a shipment's outcome (late or not, and its arrival delay) became known.

    Arrived: at the actual arrival. Cancelled: at the scheduled departure at the latest. Departed but
    never arrived (diverted): once it is 15 minutes past the scheduled arrival.
    """
    known = history["actual_arrival"].copy()
    diverted = known.isna() & ~history["cancelled"].astype(bool)
    known = known.where(~history["cancelled"].astype(bool), history["scheduled_departure"])
    return known.where(~diverted, history["scheduled_arrival"] + pd.Timedelta(minutes=15))


def _local_day(ts: pd.Series, tz: str) -> pd.Series:
    return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def trailing_performance(history: pd.DataFrame, late: pd.Series, *, key: pd.Series, prefix: str,
                         tz: str = BUSINESS_TIMEZONE, days: int = TRAILING_DAYS) -> pd.DataFrame:
    """Late rate, mean arrival delay and volume over the prior ``days`` days, one row per key and day.

    The row stamped at local midnight starting day D covers shipments scheduled on D-days .. D-1 whose
    outcome was already known at that midnight; a shipment still in the air then is counted from the
    next day's row on. Nothing scheduled on the decision day itself is ever used.
    """
    sched_day = _local_day(history["scheduled_departure"], tz)
    known = outcome_known_at(history)
    # First day D whose midnight is at or after the moment the outcome became known.
    known_local = known.dt.tz_convert(tz).dt.tz_localize(None)
    known_day = known_local.dt.ceil("D")
    start = np.maximum(sched_day + DAY, known_day)
    stop = sched_day + DAY * (days + 1)  # exclusive
    delay = (history["actual_arrival"] - history["scheduled_arrival"]).dt.total_seconds() / 60.0
    frame = pd.DataFrame({"key": key.to_numpy(), "start": start, "stop": stop,
                          "n": 1.0, "late": late.astype(float).to_numpy(),
                          "arrived": delay.notna().astype(float), "delay": delay.fillna(0.0)})
    frame = frame[frame["start"] < frame["stop"]]
    values = ["n", "late", "arrived", "delay"]
    plus = frame.groupby(["key", "start"])[values].sum().rename_axis(["key", "day"])
    minus = -frame.groupby(["key", "stop"])[values].sum().rename_axis(["key", "day"])
    deltas = pd.concat([plus, minus]).groupby(level=["key", "day"]).sum().sort_index()
    days_index = pd.date_range(deltas.index.get_level_values("day").min(),
                               deltas.index.get_level_values("day").max(), freq="D")
    grid = deltas.unstack("key").reindex(days_index).fillna(0.0).cumsum()
    totals = grid.stack("key", future_stack=True).reset_index().rename(columns={"level_0": "day"})
    totals = totals[totals["n"] > 0.5]
    out = pd.DataFrame({
        prefix: totals["key"].to_numpy(),
        "event_timestamp": totals["day"].dt.tz_localize(tz).dt.tz_convert("UTC").to_numpy(),
        f"{prefix}_late_rate_30d": (totals["late"] / totals["n"]).to_numpy(),
        f"{prefix}_mean_delay_30d": (totals["delay"] / totals["arrived"].where(totals["arrived"] > 0)).to_numpy(),
        f"{prefix}_volume_30d": totals["n"].to_numpy(),
    })
    return out.sort_values(["event_timestamp", prefix]).reset_index(drop=True)


def scheduled_congestion(history: pd.DataFrame, *, tz: str = BUSINESS_TIMEZONE,
                         published_days_ahead: int = 1) -> pd.DataFrame:
    """Departures scheduled at the origin in the same hour and the same local day.

    Schedules are published ahead of time, so the row is stamped ``published_days_ahead`` days before
    the local day it describes.
    """
    slot = origin_hour_key(history["origin"], history["scheduled_departure"])
    day = _local_day(history["scheduled_departure"], tz)
    per_hour = slot.map(slot.value_counts())
    per_day = pd.DataFrame({"o": history["origin"].to_numpy(), "d": day.to_numpy()}).groupby(
        ["o", "d"])["o"].transform("size")
    published = (day - DAY * published_days_ahead).dt.tz_localize(tz).dt.tz_convert("UTC")
    out = pd.DataFrame({"origin_hour": slot.to_numpy(), "event_timestamp": published.to_numpy(),
                        "sched_departures_origin_hour": per_hour.to_numpy(dtype=float),
                        "sched_departures_origin_day": per_day.to_numpy(dtype=float)})
    return out.drop_duplicates("origin_hour").sort_values("event_timestamp").reset_index(drop=True)


def weather_table(weather: pd.DataFrame) -> pd.DataFrame:
    """Hourly weather observations, stamped when observed (the latest one known at decision time)."""
    renamed = {c: f"weather_{c}" for c in ("temp", "dewp", "humid", "wind_speed", "wind_gust",
                                            "precip", "pressure", "visib")}
    out = weather.rename(columns=renamed | {"observed_at": "event_timestamp"})
    return out[["origin", "event_timestamp", *renamed.values()]].reset_index(drop=True)


def request_features(shipments: pd.DataFrame, *, tz: str = BUSINESS_TIMEZONE) -> pd.DataFrame:
    """Features read off the request itself (known at dispatch by definition)."""
    local = shipments["scheduled_departure"].dt.tz_convert(tz)
    block = (shipments["scheduled_arrival"] - shipments["scheduled_departure"]).dt.total_seconds() / 60.0
    return pd.DataFrame({
        "carrier": shipments["carrier"].astype(str).to_numpy(),
        "origin": shipments["origin"].astype(str).to_numpy(),
        "destination": shipments["destination"].astype(str).to_numpy(),
        "sched_dep_hour": (local.dt.hour + local.dt.minute / 60.0).to_numpy(),
        "sched_day_of_week": local.dt.dayofweek.to_numpy(dtype=float),
        "distance_miles": shipments["distance_miles"].astype(float).to_numpy(),
        "sched_block_minutes": block.to_numpy(),
    }, index=shipments.index)


def decision_times(scheduled_departure: pd.Series) -> pd.Series:
    """Decision time of each shipment: ``DECISION_LEAD_MINUTES`` before its scheduled departure."""
    return scheduled_departure - pd.Timedelta(minutes=DECISION_LEAD_MINUTES)


def entity_frame(shipments: pd.DataFrame) -> pd.DataFrame:
    """Entity keys and decision timestamp of each shipment, as Feast's entity dataframe wants them."""
    equipment = shipments["equipment_id"].astype("string").fillna("UNKNOWN") if (
        "equipment_id" in shipments) else pd.Series("UNKNOWN", index=shipments.index)
    return pd.DataFrame({
        "shipment_id": shipments["shipment_id"].to_numpy(),
        "event_timestamp": decision_times(shipments["scheduled_departure"]).to_numpy(),
        "carrier": shipments["carrier"].astype(str).to_numpy(),
        "lane": lane_key(shipments["origin"], shipments["destination"]).to_numpy(),
        "origin": shipments["origin"].astype(str).to_numpy(),
        "destination": shipments["destination"].astype(str).to_numpy(),
        "carrier_origin": carrier_origin_key(shipments["carrier"], shipments["origin"]).to_numpy(),
        "origin_hour": origin_hour_key(shipments["origin"], shipments["scheduled_departure"]).to_numpy(),
        "equipment_id": equipment.astype(str).to_numpy(),
    })
