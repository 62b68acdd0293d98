"""The model's input frame, assembled the same way in training and in serving.

Request fields give the static features; Feast gives the looked-up ones (historical join offline, online
read at serving); :func:`features.live.derive_features` adds what depends on the decision time.
"""

from __future__ import annotations

import pandas as pd

from features.feast_defs import TABLES, feature_columns
from features.live import derive_features
from features.transforms import decision_times, request_features

LOOKED_UP = [col for table in TABLES for col in feature_columns(table)]


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
