"""``tollgate load contracts|shipments|fuel-index FILE``: validate, store offline, materialize online.

All or nothing: the file is validated whole by the same loaders training uses, then merged with what
the store already holds (a record with the same identity — contract_id, shipment_id, or fuel kind and
week — is replaced) and the merged table validated again (e.g. an amendment may not overlap a contract
loaded earlier). Only then is the offline Parquet table replaced, atomically, the Feast definitions
applied and the view materialized. A refused file leaves the store exactly as it was.
"""

from __future__ import annotations

import contextlib
import sys

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd

from features import store as feature_store
from features.errors import InvalidInput
from features.feast_invoice_defs import (
    KINDS,
    RECORD_KEYS,
    VALIDATORS,
    apply_invoice_definitions,
    from_table,
    table_path,
    to_feast_table,
    write_reference_table,
)
from features.reference_io import load_contracts, load_fuel_index, load_shipment_facts

Step = Callable[[str], None]
LOADERS = {"contracts": load_contracts, "shipments": load_shipment_facts, "fuel-index": load_fuel_index}


def _identity(frame: pd.DataFrame, kind: str) -> pd.Series:
    keys = [frame[k].astype(str) for k in RECORD_KEYS[kind]]
    return keys[0].str.cat(keys[1:], sep="|") if len(keys) > 1 else keys[0]


def merge_with_store(kind: str, frame: pd.DataFrame, *, data_dir: Path) -> tuple[pd.DataFrame, int]:
    """The new records plus every stored record they do not replace, validated together."""
    path = table_path(data_dir, kind)
    if not path.exists():
        return frame, 0
    stored = from_table(kind, pd.read_parquet(path))
    replaced = _identity(stored, kind).isin(set(_identity(frame, kind)))
    merged = pd.concat([stored[~replaced], frame], ignore_index=True)
    return VALIDATORS[kind](merged), int(replaced.sum())


def materialize_kind(store, kind: str, *, table: pd.DataFrame) -> None:
    """Load the latest row of every key of this kind's view into the online store."""
    stamps = pd.to_datetime(table["event_timestamp"], utc=True)
    start = (stamps.min() - timedelta(days=1)).to_pydatetime()
    end = (stamps.max() + timedelta(seconds=1)).to_pydatetime()
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints progress; --json output stays clean
        store.materialize(start_date=start, end_date=end, feature_views=[KINDS[kind]])


def load_reference(kind: str, path: Path, *, settings: feature_store.StoreSettings | None = None,
                   step: Step = lambda _: None) -> dict:
    """Validate ``path`` as ``kind`` reference data and load it offline and online; return a summary."""
    if kind not in LOADERS:
        raise InvalidInput(f"unknown kind '{kind}': expected one of {', '.join(LOADERS)}", field="kind")
    started = time.perf_counter()
    settings = settings or feature_store.StoreSettings.from_env()
    step(f"validating {path} as {kind}")
    frame = LOADERS[kind](path)
    merged, replaced = merge_with_store(kind, frame, data_dir=settings.data_dir)
    table = to_feast_table(kind, merged)
    step(f"writing {len(table):,} rows to the offline store ({table_path(settings.data_dir, kind)})")
    write_reference_table(kind, table, data_dir=settings.data_dir)
    store = feature_store.open_store(settings)
    apply_invoice_definitions(store, settings)
    step(f"materializing {KINDS[kind]} into the {settings.online} online store")
    materialize_kind(store, kind, table=table)
    return {"kind": kind, "file": str(path), "rows_loaded": len(frame), "rows_replaced": replaced,
            "rows_in_store": len(table), "feature_view": KINDS[kind], "online_store": settings.online,
            "repo": str(settings.repo_dir), "seconds": round(time.perf_counter() - started, 2)}
