"""Live state at decision time: congestion at the origin and the equipment's last rotation.

The same window arithmetic serves two callers: training computes a snapshot for every historical decision
time in one vectorised pass; serving recomputes the snapshot for one origin when an orchestrator pushes a
departure event, and writes it through Feast's push source. Both call :func:`window_stats`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import DECISION_LEAD_MINUTES

DEPARTED_WINDOW = pd.Timedelta(minutes=60)
SCHEDULED_WINDOW = pd.Timedelta(minutes=120)
LIVE_COLUMNS = ("departures_60m", "mean_dep_delay_60m", "max_dep_delay_60m", "undeparted_120m",
                "undeparted_mean_wait_120m")
ARRIVED_WINDOW = pd.Timedelta(minutes=180)
DEST_COLUMNS = ("arrivals_180m", "mean_arr_delay_180m")
_NS_PER_MIN = 60 * 1_000_000_000


NEVER = np.iinfo(np.int64).max
"""The int64 nanosecond stamp of something that never happened (never departed, never arrived)."""


def to_ns(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC nanoseconds as int64, missing times as :data:`NEVER` (the input of the window functions)."""
    values = pd.to_datetime(ts, utc=True)
    ns = np.asarray(values.astype("int64"), dtype=np.int64).copy()
    ns[np.asarray(pd.isna(values))] = NEVER
    return ns


def window_stats(*, scheduled: np.ndarray, departed: np.ndarray, at: np.ndarray) -> dict[str, np.ndarray]:
    """Live congestion of one group at each time in ``at`` (all int64 ns UTC; never departed = int64 max).

    - ``departures_60m``: departures that happened in (at - 60 min, at]
    - ``mean_dep_delay_60m``: their mean departure delay in minutes (NaN with no departure)
    - ``max_dep_delay_60m``: the largest of those delays
    - ``undeparted_120m``: shipments scheduled in (at - 120 min, at] and not departed by ``at``
    - ``undeparted_mean_wait_120m``: how long, on average, those have been waiting past schedule
    """
    order = np.argsort(scheduled, kind="stable")
    sched, dep = scheduled[order], departed[order]
    events = _recent_events(planned=sched, happened=dep, at=at, window=DEPARTED_WINDOW)
    dep_sorted, delay_sorted, lo, hi, count, mean_delay = events
    s_hi = np.searchsorted(sched, at, side="right")
    s_lo = np.searchsorted(sched, at - SCHEDULED_WINDOW.value, side="right")
    width = int((s_hi - s_lo).max(initial=0))
    undeparted, wait = np.zeros(len(at)), np.full(len(at), np.nan)
    if width:
        idx = s_lo[:, None] + np.arange(width)[None, :]
        inside = idx < s_hi[:, None]
        clipped = np.minimum(idx, len(dep) - 1)
        waiting = inside & (dep[clipped] > at[:, None])
        undeparted = waiting.sum(axis=1).astype(float)
        waited = np.where(waiting, (at[:, None] - sched[clipped]) / _NS_PER_MIN, 0.0).sum(axis=1)
        wait = np.where(undeparted > 0, waited / np.maximum(undeparted, 1), np.nan)
    max_delay = _window_max(dep_sorted, delay_sorted, lo=lo, hi=hi)
    return {"departures_60m": count, "mean_dep_delay_60m": mean_delay, "max_dep_delay_60m": max_delay,
            "undeparted_120m": undeparted, "undeparted_mean_wait_120m": wait}


def _window_max(times: np.ndarray, values: np.ndarray, *, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) per query (NaN where the window is empty), without a Python loop."""
    width = int((hi - lo).max(initial=0))
    if width == 0 or len(values) == 0:
        return np.full(len(lo), np.nan)
    idx = lo[:, None] + np.arange(width)[None, :]
    inside = idx < hi[:, None]
    gathered = np.where(inside, values[np.minimum(idx, len(values) - 1)], -np.inf)
    best = gathered.max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def live_congestion(history: pd.DataFrame, *, group: pd.Series, queries: pd.DataFrame,
                    key_name: str, prefix: str) -> pd.DataFrame:
    """Snapshot per (group, time) in ``queries`` (columns ``key``, ``at``) from history grouped by ``group``.

    Only ``scheduled_departure`` and ``actual_departure`` at or before each query time can move a value.
    """
    scheduled = to_ns(history["scheduled_departure"])
    departed = to_ns(history["actual_departure"])
    groups = pd.Series(np.arange(len(history))).groupby(group.to_numpy()).indices
    queries = queries.drop_duplicates(["key", "at"])
    parts = []
    for key, at_frame in queries.groupby("key", sort=False):
        rows = groups.get(key, np.array([], dtype=int))
        at = to_ns(at_frame["at"])
        stats = window_stats(scheduled=scheduled[rows], departed=departed[rows], at=at)
        part = pd.DataFrame({key_name: key, "event_timestamp": at_frame["at"].to_numpy()})
        for name in LIVE_COLUMNS:
            part[f"{prefix}_{name}"] = stats[name]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["event_timestamp", key_name]).reset_index(drop=True)


def _recent_events(*, planned: np.ndarray, happened: np.ndarray, at: np.ndarray, window: pd.Timedelta):
    """Events (departures or arrivals) in (at - window, at]: sorted times and delays, bounds, count, mean delay."""
    done = happened != NEVER
    order = np.argsort(happened[done], kind="stable")
    times = happened[done][order]
    delays = ((happened[done] - planned[done]) / _NS_PER_MIN)[order]
    csum = np.concatenate([[0.0], np.cumsum(delays)])
    hi = np.searchsorted(times, at, side="right")
    lo = np.searchsorted(times, at - window.value, side="right")
    count = (hi - lo).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, (csum[hi] - csum[lo]) / count, np.nan)
    return times, delays, lo, hi, count, mean


def arrival_stats(*, scheduled: np.ndarray, arrived: np.ndarray, at: np.ndarray) -> dict[str, np.ndarray]:
    """Arrivals in (at - 180 min, at] and their mean arrival delay (ns UTC; never arrived = int64 max).

    A destination's recent arrival delays reveal ground-delay programmes and weather there.
    """
    _, _, _, _, count, mean = _recent_events(planned=scheduled, happened=arrived, at=at, window=ARRIVED_WINDOW)
    return {"arrivals_180m": count, "mean_arr_delay_180m": mean}


def destination_live(history: pd.DataFrame, *, queries: pd.DataFrame) -> pd.DataFrame:
    """Snapshot of recent arrivals per (destination, time) in ``queries`` (columns ``key``, ``at``)."""
    scheduled = to_ns(history["scheduled_arrival"])
    arrived = to_ns(history["actual_arrival"])
    groups = pd.Series(np.arange(len(history))).groupby(history["destination"].to_numpy()).indices
    parts = []
    for key, at_frame in queries.drop_duplicates(["key", "at"]).groupby("key", sort=False):
        rows = groups.get(key, np.array([], dtype=int))
        stats = arrival_stats(scheduled=scheduled[rows], arrived=arrived[rows], at=to_ns(at_frame["at"]))
        part = pd.DataFrame({"destination": key, "event_timestamp": at_frame["at"].to_numpy()})
        for name in DEST_COLUMNS:
            part[f"dest_live_{name}"] = stats[name]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["event_timestamp", "destination"]).reset_index(drop=True)


EQUIPMENT_COLUMNS = ("eq_last_dep_delay", "eq_last_departure_epoch", "eq_last_sched_block_minutes")
"""The equipment_rotation view's values, in its fixed order."""


def equipment_rotation(history: pd.DataFrame) -> pd.DataFrame:
    """One row per actual departure of a known piece of equipment, stamped when it departed."""
    departed = history[history["actual_departure"].notna() & history["equipment_id"].notna()]
    delay = (departed["actual_departure"] - departed["scheduled_departure"]).dt.total_seconds() / 60.0
    block = (departed["scheduled_arrival"] - departed["scheduled_departure"]).dt.total_seconds() / 60.0
    out = pd.DataFrame({
        "equipment_id": departed["equipment_id"].astype(str).to_numpy(),
        "event_timestamp": departed["actual_departure"].to_numpy(),
        "eq_last_dep_delay": delay.to_numpy(),
        "eq_last_departure_epoch": departed["actual_departure"].astype("int64").to_numpy() / 1e9,
        "eq_last_sched_block_minutes": block.to_numpy(),
    })
    out = out.sort_values(["event_timestamp", "equipment_id"])
    return out.drop_duplicates(["equipment_id", "event_timestamp"], keep="last").reset_index(drop=True)


def derive_features(frame: pd.DataFrame, decision_time: pd.Series) -> pd.DataFrame:
    """Features computed from looked-up values and the decision time (training and serving alike).

    An equipment row whose departure came after the decision time is not the row as of that time: the
    point-in-time join never returns one, but an online store holds only the latest departure (a
    decision asked for after its decision time, or a replayed one). Its values are then unknown, as
    for equipment never seen (:func:`equipment_unknown_after`)."""
    out = frame.copy()
    since = decision_time.astype("int64").to_numpy() / 1e9 - out["eq_last_departure_epoch"].to_numpy(dtype=float)
    later = equipment_unknown_after(since)
    if later.any():
        out.loc[later, [c for c in EQUIPMENT_COLUMNS if c in out.columns]] = np.nan
        since = np.where(later, np.nan, since)
    out["eq_minutes_since_last_departure"] = since / 60.0
    # Time left for the out-and-back trip before this departure: negative means the equipment cannot be
    # back in time even if everything runs to schedule from now on.
    out["eq_rotation_slack_minutes"] = (since / 60.0 + DECISION_LEAD_MINUTES
                                        - 2.0 * out["eq_last_sched_block_minutes"].to_numpy(dtype=float))
    return out.drop(columns=["eq_last_departure_epoch"])


def equipment_unknown_after(since: np.ndarray) -> np.ndarray:
    """Rows whose looked-up equipment departure is later than the decision time (``since``: decision time
    minus that departure, any unit; NaN where no departure is known). Training never sees such a row; a
    value from after the decision gave the delay model log-odds of +3.5 once (minus ten days, a replay)."""
    return ~np.isnan(since) & (since < 0)
