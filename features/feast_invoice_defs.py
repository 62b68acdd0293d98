"""Feast definitions for the invoice audit's reference data: contracts, shipment facts, fuel index.

Serving looks reference data up by key at decision time; training reads the same files. Keys:

* ``shipment_id`` — the shipment facts of one shipment (event timestamp ``scheduled_departure``);
* ``contract_lane`` = ``mode|carrier|origin|destination`` — the latest-effective contract row of the
  lane (event timestamp ``effective_from``) *and*, in ``versions``, every earlier row of the lane, so
  the contract in force on any shipment date can be picked from one online read (an amendment can
  take effect between a shipment and its invoice);
* ``fuel_week`` = ``fuel_kind|YYYY-MM-DD`` (the Monday) — one published price per week, so the week of
  a shipment date is looked up exactly rather than "the latest week".

Values keep the canonical file form (numbers typed, dates and instants as ISO 8601 text, empty when
missing). A table read back from a file goes through the same validating loader as any file
(:func:`from_table`); rows read from the online store, which only the validating loader writes, are
decoded by type into the same frame (:func:`decode_online`). Built by functions, never at import time;
``apply_invoice_definitions`` uses Feast's partial apply, which adds and updates objects and never
deletes the delay definitions.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Bool, Float64, Int64, String

from features.reference_checks import _TRUTH, Column
from features.reference_io import validate_contracts, validate_fuel_index, validate_shipment_facts
from features.reference_io_specs import CONTRACT_COLUMNS, DATE_COLUMNS, FACT_COLUMNS, FUEL_COLUMNS

FEATURE_SERVICE = "invoice_reference_v1"
KINDS = {"contracts": "contract_terms", "shipments": "shipment_facts", "fuel-index": "fuel_prices"}
"""CLI kind -> feature view (and Parquet table) name."""
_COLUMNS = {"contracts": CONTRACT_COLUMNS, "shipments": FACT_COLUMNS, "fuel-index": FUEL_COLUMNS}
_KEYS = {"contracts": "contract_lane", "shipments": "shipment_id", "fuel-index": "fuel_week"}
_TIMESTAMPS = {"contracts": "effective_from", "shipments": "scheduled_departure", "fuel-index": "week_start"}
VALIDATORS = {"contracts": validate_contracts, "shipments": validate_shipment_facts,
               "fuel-index": validate_fuel_index}
_TYPES = {"number": Float64, "integer": Int64, "bool": Bool}
RECORD_KEYS = {"contracts": ("contract_id",), "shipments": ("shipment_id",),
               "fuel-index": ("fuel_kind", "week_start")}
"""What identifies one record of each kind: a reload replaces records with the same identity."""


def contract_lane_key(record):
    """``mode|carrier|origin|destination`` of a record (a mapping, a row, or a whole frame at once)."""
    return record["mode"] + "|" + record["carrier"] + "|" + record["origin"] + "|" + record["destination"]


def fuel_week_key(fuel_kind, week_start: pd.Series | pd.Timestamp):
    """``fuel_kind|YYYY-MM-DD`` of the Monday the price applies to."""
    day = week_start.strftime("%Y-%m-%d") if isinstance(week_start, pd.Timestamp) else \
        week_start.dt.strftime("%Y-%m-%d")
    return fuel_kind + "|" + day


def table_path(data_dir: Path, kind: str) -> Path:
    """Where the offline Parquet table of a reference kind lives."""
    return Path(data_dir) / f"{KINDS[kind]}.parquet"


def value_columns(kind: str) -> list[str]:
    """Feature names of a kind's view (every canonical column except the entity's own key)."""
    names = [c.name for c in _COLUMNS[kind] if c.name != _KEYS[kind]]
    return [*names, "versions"] if kind == "contracts" else names


def _field_type(column: Column):
    return _TYPES.get(column.kind, String)


def _text_form(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """Dates and instants as ISO 8601 text ('' when missing), text columns with '' for missing."""
    out = frame.copy()
    for col in columns:
        if col.kind in ("date", "timestamp"):
            stamps = out[col.name].dt.tz_convert("UTC")
            text = stamps.dt.strftime("%Y-%m-%d" if col.name in DATE_COLUMNS else "%Y-%m-%dT%H:%M:%S+00:00")
            out[col.name] = text.fillna("").astype(str)
        elif _field_type(col) is String:
            out[col.name] = out[col.name].fillna("").astype(str)
    return out


def _versions(table: pd.DataFrame) -> pd.Series:
    """Per contract row: JSON list of the lane's rows effective up to it, latest first."""
    ordered = table.sort_values("effective_from", kind="stable")
    names = [c.name for c in CONTRACT_COLUMNS]
    out = {}
    for _, lane in ordered.groupby("contract_lane", sort=False):
        records = lane[names].to_dict("records")
        for position, index in enumerate(lane.index):
            out[index] = json.dumps(records[position::-1], default=float)
    return pd.Series(out).reindex(table.index)


def to_feast_table(kind: str, canonical: pd.DataFrame) -> pd.DataFrame:
    """The offline table of a validated frame: entity key, ``event_timestamp`` and the feature values."""
    table = _text_form(canonical, _COLUMNS[kind]).reset_index(drop=True)
    table["event_timestamp"] = canonical[_TIMESTAMPS[kind]].reset_index(drop=True)
    if kind == "contracts":
        table["contract_lane"] = contract_lane_key(table)
        table["versions"] = _versions(table)
    elif kind == "fuel-index":
        table["fuel_week"] = fuel_week_key(table["fuel_kind"], canonical["week_start"].reset_index(drop=True))
    return table


def from_table(kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """Canonical, validated frame back from an offline table or online rows (drops absent entities)."""
    columns = [c.name for c in _COLUMNS[kind]]
    if kind == "contracts":
        present = table["versions"].notna() & (table["versions"] != "")
        records = [row for text in table.loc[present, "versions"] for row in json.loads(text)]
        frame = pd.DataFrame(records, columns=columns).drop_duplicates("contract_id")
    else:
        stamp = table[_TIMESTAMPS[kind]]
        frame = table.loc[stamp.notna() & (stamp.astype(str) != ""), columns]
    text = frame.astype(object).where(frame.notna(), "")
    return VALIDATORS[kind](text.map(lambda v: v if isinstance(v, str) else _plain(v)).reset_index(drop=True))


def decode_online(kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`from_table` for rows read from the online store, decoded by type without validating again.

    The online store is written only from tables the validating loader produced (``tollgate load``
    materializes them), so its rows passed every check once. Turning them into text and through the
    validators a second time cost ~40 ms an online read of one shipment, a quarter of a single invoice
    decision (docs/decisions.md, session 15). The frame is the very one :func:`from_table` builds, column
    for column and dtype for dtype (``tests/training/test_load_job.py`` holds the two equal on every
    stored row). What raises (the scorer's caller turns it into a degraded decision): a value of the
    wrong type or that cannot be parsed, a required value missing, and a key twice in one read. Ranges,
    patterns and the cross-field rules are the loader's and are not checked again."""
    columns = _COLUMNS[kind]
    if kind == "contracts":
        texts = [text for text in table["versions"].tolist() if isinstance(text, str) and text]
        records = {}
        for text in texts:
            for record in json.loads(text):
                records.setdefault(record["contract_id"], record)  # the first of each, as drop_duplicates
        rows = list(records.values())
        values = {c.name: [row.get(c.name) for row in rows] for c in columns}
    else:
        stamps = table[_TIMESTAMPS[kind]].tolist()
        keep = [i for i, stamp in enumerate(stamps) if isinstance(stamp, str) and stamp]
        values = {}
        for c in columns:
            column = table[c.name].tolist()
            values[c.name] = [column[i] for i in keep]
    frame = pd.DataFrame({c.name: _decoded(kind, c, values[c.name]) for c in columns})
    identity = list(RECORD_KEYS[kind])
    if frame.duplicated(identity).any():
        raise ValueError(f"{kind}: {'/'.join(identity)} read twice in one online read")
    if kind == "fuel-index":
        frame = frame.sort_values(["fuel_kind", "week_start"]).reset_index(drop=True)
    return frame


def _decoded(kind: str, column: Column, values: list) -> np.ndarray | pd.Series:
    """One column in the dtype its validator gives it, from online values (missing: None, NaN or '')."""
    if column.kind in ("number", "integer"):
        out = np.array([_number(column, v) for v in values], dtype=float)
        missing = np.isnan(out)
    elif column.kind == "bool":
        out = np.array([_flag(column, v) for v in values], dtype=object)
        missing = np.array([v is None for v in out], dtype=bool)
    elif column.kind in ("timestamp", "date"):
        text = pd.Series([_text(column, v) for v in values], dtype=object)
        if column.kind == "date":
            parsed = pd.to_datetime(text, format="%Y-%m-%d").dt.tz_localize("UTC")
        else:
            parsed = pd.to_datetime(text, utc=True, format="ISO8601")
        out = parsed.astype("datetime64[ns, UTC]")
        missing = out.isna().to_numpy()
    else:
        text = [_text(column, v) for v in values]
        out = np.array([v or "" for v in text] if column.kind == "choices" else text, dtype=object)
        missing = np.array([v is None for v in text], dtype=bool)
    if not column.nullable and missing.any():
        raise ValueError(f"{kind}: column '{column.name}' has no value in a row read online (one is required)")
    if column.kind == "integer" and not column.nullable:
        return out.astype("int64")
    return out.astype(bool) if column.kind == "bool" and not column.nullable else out


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(column: Column, value: object) -> float:
    if _absent(value) or value == "":
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, str):
        number = float(value)  # raises on text that is not a number
        if number == number:
            return number
    raise ValueError(f"column '{column.name}': {value!r} is not a number")


def _flag(column: Column, value: object) -> bool | None:
    if _absent(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "":
        return None
    if text in _TRUTH:
        return _TRUTH[text]
    raise ValueError(f"column '{column.name}': {value!r} is not true or false")


def _text(column: Column, value: object) -> str | None:
    """Stripped text, None when empty or missing; a value of another type raises."""
    if _absent(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    raise ValueError(f"column '{column.name}': {value!r} is not text")


def _plain(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def build_invoice_definitions(data_dir: Path) -> list:
    """Entities, sources, the three reference views and the ``invoice_reference_v1`` FeatureService."""
    views = []
    entities = []
    for kind, view_name in KINDS.items():
        key = _KEYS[kind]
        entity = Entity(name=key, join_keys=[key], value_type=ValueType.STRING,
                        description=f"key of the {kind} reference data")
        types = {c.name: _field_type(c) for c in _COLUMNS[kind]} | {"versions": String}
        source = FileSource(name=f"{view_name}_source", path=str(table_path(data_dir, kind).resolve()),
                            timestamp_field="event_timestamp")
        views.append(FeatureView(name=view_name, entities=[entity], ttl=timedelta(0), online=True,
                                 schema=[Field(name=n, dtype=types[n]) for n in value_columns(kind)],
                                 source=source))
        entities.append(entity)
    service = FeatureService(name=FEATURE_SERVICE, features=views,
                             description="Invoice audit reference data: contracts, shipment facts, fuel index")
    return [*entities, *views, service]


def apply_invoice_definitions(store, settings) -> None:
    """Register the invoice-side objects (partial apply: the delay definitions are left alone)."""
    store.apply(build_invoice_definitions(settings.data_dir), partial=True)


def write_reference_table(kind: str, table: pd.DataFrame, *, data_dir: Path) -> Path:
    """Write the offline table atomically (a crash leaves the previous table intact)."""
    target = table_path(data_dir, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(target)
    return target


def online_reference(store, kind: str, keys: list[str]) -> pd.DataFrame:
    """Online lookup of one kind by key (see the module docstring), as the canonical frame the
    validating loader gives (:func:`decode_online`).

    Keys with nothing stored are left out; for contracts the frame holds every version of each lane,
    and the caller picks the row in force on the shipment date (as re-rating does).
    """
    refs = [f"{KINDS[kind]}:{name}" for name in value_columns(kind)]
    rows = [{_KEYS[kind]: key} for key in keys]
    return decode_online(kind, store.get_online_features(features=refs, entity_rows=rows).to_df())
