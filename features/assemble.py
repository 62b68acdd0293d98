"""The model's input frame, assembled the same way in training and in serving.

Request fields give the static features; Feast gives the looked-up ones (historical join offline, online
read at serving); :func:`features.live.derive_features` adds what depends on the decision time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from features.feast_defs import TABLES, feature_columns
from features.live import EQUIPMENT_COLUMNS, derive_features, equipment_unknown_after
from features.schemas import DECISION_LEAD_MINUTES
from features.transforms import BUSINESS_TIMEZONE, decision_times, request_features

LOOKED_UP = [col for table in TABLES for col in feature_columns(table)]
_LOCAL = ZoneInfo(BUSINESS_TIMEZONE)
_LEAD = timedelta(minutes=DECISION_LEAD_MINUTES)
_EPOCH = LOOKED_UP.index("eq_last_departure_epoch")
_BLOCK = LOOKED_UP.index("eq_last_sched_block_minutes")
_EQUIPMENT = [LOOKED_UP.index(c) for c in EQUIPMENT_COLUMNS]


def model_frame(shipments: pd.DataFrame, looked_up: pd.DataFrame) -> pd.DataFrame:
    """Request features + looked-up features + derived features, one row per shipment, fixed order."""
    missing = [c for c in LOOKED_UP if c not in looked_up.columns]
    if missing:
        raise KeyError(f"looked-up features missing column(s): {missing}")
    request = request_features(shipments).reset_index(drop=True)
    values = looked_up[LOOKED_UP].reset_index(drop=True).astype(float)
    frame = pd.concat([request, values], axis=1)
    return derive_features(frame, decision_times(shipments["scheduled_departure"]).reset_index(drop=True))


def feature_names() -> list[str]:
    """Column names of :func:`model_frame`'s output."""
    sample = pd.DataFrame({
        "shipment_id": ["x"], "carrier": ["AA"], "origin": ["JFK"], "destination": ["LAX"],
        "scheduled_departure": pd.to_datetime(["2013-01-01T12:00Z"]),
        "scheduled_arrival": pd.to_datetime(["2013-01-01T18:00Z"]), "distance_miles": [2475.0],
    })
    return list(model_frame(sample, pd.DataFrame({c: [float("nan")] for c in LOOKED_UP})).columns)


# -- the same, row by row, for the decision hot path --------------------------------------------------
# A request of one shipment (and its alternatives) costs ~1 ms through the pandas functions above and
# ~0.05 ms here; tests/features/test_assemble_rows.py checks both give the same entity keys and features.

def entity_keys(shipment: Mapping) -> dict[str, str]:
    """:func:`features.transforms.entity_frame`'s keys for one shipment (a mapping with the request's
    fields; ``scheduled_departure`` a timezone-aware datetime)."""
    carrier, origin, destination = shipment["carrier"], shipment["origin"], shipment["destination"]
    utc = shipment["scheduled_departure"].astimezone(UTC)
    stamp = utc.year * 1_000_000 + utc.month * 10_000 + utc.day * 100 + utc.hour
    return {"carrier": carrier, "lane": f"{origin}-{destination}", "origin": origin, "destination": destination,
            "carrier_origin": f"{carrier}@{origin}", "origin_hour": f"{origin}@{stamp}",
            "equipment_id": shipment.get("equipment_id") or "UNKNOWN"}


def with_carrier(keys: Mapping[str, str], carrier: str) -> dict[str, str]:
    """:func:`entity_keys` of the same shipment with another carrier (an alternative on its lane): only the
    carrier's own keys change."""
    return {**keys, "carrier": carrier, "carrier_origin": f"{carrier}@{keys['origin']}"}


def model_columns(shipments: Sequence[Mapping], looked_up: np.ndarray) -> dict[str, list | np.ndarray]:
    """:func:`model_frame` as columns (name -> values, the same order): request features, the looked-up
    values (``looked_up``: one row per shipment, ``LOOKED_UP`` order) and the derived ones."""
    local = [s["scheduled_departure"].astimezone(_LOCAL) for s in shipments]
    columns: dict[str, list | np.ndarray] = {
        "carrier": [s["carrier"] for s in shipments],
        "origin": [s["origin"] for s in shipments],
        "destination": [s["destination"] for s in shipments],
        "sched_dep_hour": np.array([t.hour + t.minute / 60.0 for t in local], dtype=float),
        "sched_day_of_week": np.array([t.weekday() for t in local], dtype=float),
        "distance_miles": np.array([np.nan if s.get("distance_miles") is None else s["distance_miles"]
                                    for s in shipments], dtype=float),
        "sched_block_minutes": np.array([(s["scheduled_arrival"] - s["scheduled_departure"]).total_seconds() / 60.0
                                         for s in shipments], dtype=float),
    }
    decided = np.array([(s["scheduled_departure"] - _LEAD).timestamp() for s in shipments], dtype=float)
    since = (decided - looked_up[:, _EPOCH]) / 60.0
    later = equipment_unknown_after(since)  # as derive_features: a departure after the decision is unknown
    if later.any():
        looked_up = looked_up.copy()
        looked_up[np.ix_(later, _EQUIPMENT)] = np.nan
        since = np.where(later, np.nan, since)
    for j, name in enumerate(LOOKED_UP):
        if j != _EPOCH:
            columns[name] = looked_up[:, j]
    columns["eq_minutes_since_last_departure"] = since
    columns["eq_rotation_slack_minutes"] = since + DECISION_LEAD_MINUTES - 2.0 * looked_up[:, _BLOCK]
    return columns
