"""Reading and writing reference files (CSV or Parquet): contracts, shipment facts, fuel index, invoices.

Every loader is all-or-nothing: it validates the whole file and raises ``InvalidInput`` naming the column
and the first bad 1-based data row before anything is returned. Dates are returned as UTC-midnight
timestamps and instants as UTC timestamps, so ``effective_from`` (contracts), ``week_start`` (fuel),
``scheduled_departure`` (facts) and ``received_at`` (invoices) can serve directly as Feast event
timestamps. Writers produce files these loaders read back unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from features.errors import InvalidInput
from features.reference import MODE_CHARGE_CODES, MODE_FUEL_KIND, AccessorialPrice
from features.reference_checks import Column, refuse, validate_columns
from features.reference_io_specs import (
    CONTRACT_COLUMNS,
    DATE_COLUMNS,
    FACT_COLUMNS,
    FUEL_COLUMNS,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
)
from features.schemas import Mode

_ACCESSORIALS = TypeAdapter(tuple[AccessorialPrice, ...])


def read_table(path: str | Path, columns: tuple[Column, ...], *, record: str) -> pd.DataFrame:
    """Read CSV (all values as text) or Parquet (native types) and validate its declared columns."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{record}: file {path} does not exist", field=record)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        raw = pd.read_parquet(path)
    elif suffix in {".csv", ".gz"}:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        raise InvalidInput(f"{record}: {path.name}: expected .csv or .parquet", field=record)
    return validate_columns(raw, columns, record=f"{record} ({path.name})")


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as Parquet or CSV (by suffix); CSV dates as YYYY-MM-DD and instants ISO 8601 UTC."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
        return path
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            utc = out[name].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
            text = np.datetime_as_string(utc, unit="D" if name in DATE_COLUMNS else "s")
            suffix = "" if name in DATE_COLUMNS else "+00:00"
            out[name] = np.where(np.isnat(utc), "", np.char.add(text, suffix))
    out.to_csv(path, index=False)
    return path


def validate_contracts(raw: pd.DataFrame, record: str = "contracts") -> pd.DataFrame:
    """Column checks, then each row's accessorial price list and mode rules through the pydantic schema."""
    frame = validate_columns(raw, CONTRACT_COLUMNS, record=record)
    refuse(record, "effective_to", bad=frame["effective_to"] < frame["effective_from"],
           why="must not be before effective_from", shown=frame["effective_to"])
    expected_fuel = frame["mode"].map({m.value: MODE_FUEL_KIND[m].value for m in Mode})
    refuse(record, "fuel_kind", bad=frame["fuel_kind"] != expected_fuel,
           why="wrong fuel for the mode", shown=frame["fuel_kind"])
    refuse(record, "contract_id", bad=frame["contract_id"].duplicated(),
           why="duplicate contract_id", shown=frame["contract_id"])
    for row, (text, mode) in enumerate(zip(frame["accessorials"], frame["mode"], strict=True), start=1):
        _check_accessorials(text, Mode(mode), record=record, row=row)
    _refuse_overlaps(frame, record)
    return frame


def _check_accessorials(text: str, mode: Mode, *, record: str, row: int) -> None:
    try:
        prices = _ACCESSORIALS.validate_python(json.loads(text))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{record}: column 'accessorials', row {row}: entry {where}: {first['msg']}",
                           field="accessorials", row=row) from None
    except ValueError as error:  # JSONDecodeError
        raise InvalidInput(f"{record}: column 'accessorials', row {row}: not a JSON list ({error})",
                           field="accessorials", row=row) from None
    codes = [p.code for p in prices]
    if any(code not in MODE_CHARGE_CODES[mode] for code in codes) or len(set(codes)) != len(codes):
        raise InvalidInput(f"{record}: column 'accessorials', row {row}: codes must be unique accessorials "
                           f"of mode {mode.value} (got {[c.value for c in codes]})",
                           field="accessorials", row=row)


def _refuse_overlaps(frame: pd.DataFrame, record: str) -> None:
    """Two contracts in force on the same day for one carrier and lane leave re-rating ambiguous."""
    keys = ["mode", "carrier", "origin", "destination"]
    ordered = frame.sort_values([*keys, "effective_from"])
    same_lane = (ordered[keys] == ordered[keys].shift()).all(axis=1)
    overlap = same_lane & (ordered["effective_from"] <= ordered["effective_to"].shift())
    refuse(record, "effective_from", bad=overlap.reindex(frame.index).fillna(False),
           why="overlaps an earlier contract of the same carrier and lane", shown=frame["effective_from"])


def load_contracts(path: str | Path) -> pd.DataFrame:
    """Contracts, one row per carrier, lane and validity period (event timestamp: ``effective_from``)."""
    raw = read_table(path, CONTRACT_COLUMNS, record="contracts")
    return validate_contracts(raw, f"contracts ({Path(path).name})")


def validate_shipment_facts(raw: pd.DataFrame, record: str = "shipment facts") -> pd.DataFrame:
    """Column checks plus the cross-field rules of ``ShipmentFacts``."""
    frame = validate_columns(raw, FACT_COLUMNS, record=record)
    refuse(record, "scheduled_arrival", bad=frame["scheduled_arrival"] <= frame["scheduled_departure"],
           why="must be after scheduled_departure", shown=frame["scheduled_arrival"])
    dims = frame[["length_cm", "width_cm", "height_cm"]].isna().sum(axis=1)
    refuse(record, "length_cm", bad=(dims > 0) & (dims < 3), why="give all three dimensions or none")
    air_only = {c.value for c in MODE_CHARGE_CODES[Mode.AIR]}
    road_only = {c.value for c in MODE_CHARGE_CODES[Mode.ROAD]}
    tokens = frame["requested_services"].str.split(";").explode().str.strip()
    allowed = frame["mode"].map({"air": air_only, "road": road_only}).reindex(tokens.index)
    bad = pd.Series([t != "" and t not in a for t, a in zip(tokens, allowed, strict=True)], index=tokens.index)
    refuse(record, "requested_services", bad=bad.groupby(level=0).any(),
           why="service not valid for the mode", shown=frame["requested_services"])
    refuse(record, "shipment_id", bad=frame["shipment_id"].duplicated(),
           why="duplicate shipment_id", shown=frame["shipment_id"])
    return frame


def load_shipment_facts(path: str | Path) -> pd.DataFrame:
    """Shipment facts, one row per shipment (event timestamp: ``scheduled_departure``)."""
    return validate_shipment_facts(read_table(path, FACT_COLUMNS, record="shipment facts"),
                                   f"shipment facts ({Path(path).name})")


def validate_fuel_index(raw: pd.DataFrame, record: str = "fuel index") -> pd.DataFrame:
    """Column checks; weeks start on Monday and each (fuel_kind, week) is published once."""
    frame = validate_columns(raw, FUEL_COLUMNS, record=record)
    refuse(record, "week_start", bad=frame["week_start"].dt.weekday != 0,
           why="must be a Monday", shown=frame["week_start"])
    refuse(record, "week_start", bad=frame.duplicated(["fuel_kind", "week_start"]),
           why="published twice for the same fuel", shown=frame["week_start"])
    return frame.sort_values(["fuel_kind", "week_start"]).reset_index(drop=True)


def load_fuel_index(path: str | Path) -> pd.DataFrame:
    """Weekly fuel prices (event timestamp: ``week_start``)."""
    raw = read_table(path, FUEL_COLUMNS, record="fuel index")
    return validate_fuel_index(raw, f"fuel index ({Path(path).name})")


def _fractional_cents(amount: pd.Series) -> np.ndarray:
    cents = amount.to_numpy(dtype=float) * 100.0
    return np.abs(cents - np.round(cents)) > 1e-6


def validate_invoices(invoices: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Headers and lines together: codes valid for the invoice's mode, lines summing to the total."""
    heads = validate_columns(invoices, INVOICE_COLUMNS, record="invoices")
    body = validate_columns(lines, LINE_COLUMNS, record="invoice lines")
    refuse("invoices", "invoice_id", bad=heads["invoice_id"].duplicated(),
           why="duplicate invoice_id", shown=heads["invoice_id"])
    refuse("invoice lines", "invoice_id", bad=~body["invoice_id"].isin(heads["invoice_id"]),
           why="line of an unknown invoice", shown=body["invoice_id"])
    mode = body["invoice_id"].map(heads.set_index("invoice_id")["mode"])
    valid = mode.map({m.value: {c.value for c in MODE_CHARGE_CODES[m]} for m in Mode})
    bad_code = [code not in ok for code, ok in zip(body["code"], valid, strict=True)]
    refuse("invoice lines", "code", bad=pd.Series(bad_code),
           why="charge code not valid for the invoice's mode", shown=body["code"])
    refuse("invoice lines", "amount", bad=_fractional_cents(body["amount"]),
           why="more than two decimals", shown=body["amount"])
    refuse("invoices", "total", bad=_fractional_cents(heads["total"]),
           why="more than two decimals", shown=heads["total"])
    sums = body.groupby("invoice_id")["amount"].sum().reindex(heads["invoice_id"]).fillna(0.0)
    off = np.abs(sums.to_numpy() - heads["total"].to_numpy()) > 0.01 + 1e-6
    if off.any():
        k = int(np.flatnonzero(off)[0])
        refuse("invoices", "total", bad=off, why=f"invoice {heads['invoice_id'].iloc[k]}: lines sum to "
               f"{sums.iloc[k]:.2f} (beyond one cent of the total)", shown=heads["total"])
    return heads, body


def load_invoices(invoices_path: str | Path, lines_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Invoice headers and lines from two files; both are refused together if either is bad."""
    heads = read_table(invoices_path, INVOICE_COLUMNS, record="invoices")
    body = read_table(lines_path, LINE_COLUMNS, record="invoice lines")
    return validate_invoices(heads, body)


def contract_accessorial_table(contracts: pd.DataFrame) -> pd.DataFrame:
    """Long form of the price lists: one row per (contract_id, code) with basis, rate, minimum, free_hours."""
    records = [{"contract_id": cid, **price}
               for cid, text in zip(contracts["contract_id"], contracts["accessorials"], strict=True)
               for price in json.loads(text)]
    table = pd.DataFrame(records, columns=["contract_id", "code", "basis", "rate", "minimum", "free_hours"])
    return table.fillna({"minimum": 0.0, "free_hours": 0.0})


__all__ = ["contract_accessorial_table",
           "load_contracts", "load_fuel_index", "load_invoices", "load_shipment_facts", "read_table",
           "validate_contracts", "validate_fuel_index", "validate_invoices", "validate_shipment_facts",
           "write_table"]
