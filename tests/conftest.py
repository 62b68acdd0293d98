"""Shared fixtures: tiny hand-made histories, the embedded history (once per session), isolation."""

from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test may write MLflow or Feast state into the checkout."""
    monkeypatch.setenv("TOLLGATE_MLFLOW_URI", f"sqlite:///{tmp_path}/mlflow-default.db")
    monkeypatch.setenv("TOLLGATE_FEAST_REPO", str(tmp_path / "feast-default"))
    monkeypatch.chdir(tmp_path)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if pd.Timestamp(text).tzinfo else pd.Timestamp(text, tz="UTC")


def shipment(sid: str, *, carrier="AA", origin="JFK", dest="LAX", dep: str, arr: str | None = None,
             dep_delay: float | None = 0.0, arr_delay: float | None = 0.0, tail: str | None = "N1",
             distance: float = 2475.0) -> dict:
    """One canonical record; ``dep_delay=None`` means cancelled, ``arr_delay=None`` diverted."""
    sched_dep = ts(dep)
    sched_arr = ts(arr) if arr else sched_dep + pd.Timedelta(hours=6)
    cancelled = dep_delay is None
    return {
        "shipment_id": sid, "carrier": carrier, "origin": origin, "destination": dest, "mode": "air",
        "scheduled_departure": sched_dep, "scheduled_arrival": sched_arr,
        "actual_departure": pd.NaT if cancelled else sched_dep + pd.Timedelta(minutes=dep_delay),
        "actual_arrival": pd.NaT if (cancelled or arr_delay is None) else sched_arr + pd.Timedelta(minutes=arr_delay),
        "cancelled": cancelled, "distance_miles": distance, "equipment_id": tail,
    }


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    for col in ("scheduled_departure", "scheduled_arrival", "actual_departure", "actual_arrival"):
        out[col] = pd.to_datetime(out[col], utc=True)
    out["equipment_id"] = out["equipment_id"].astype("string")
    return out.sort_values("scheduled_departure").reset_index(drop=True)


@pytest.fixture(scope="session")
def embedded_history() -> pd.DataFrame:
    from features.history import load_embedded_history

    return load_embedded_history()


@pytest.fixture(scope="session")
def march_sample(embedded_history) -> pd.DataFrame:
    """Ten days of real departures (all three origins), for integration tests."""
    h = embedded_history
    keep = (h["scheduled_departure"] >= "2013-03-01T05:00Z") & (h["scheduled_departure"] < "2013-03-11T05:00Z")
    return h[keep].reset_index(drop=True)
