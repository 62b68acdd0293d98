"""Events pushed by orchestrators update the live features online, through Feast's push sources.

Movements (what was scheduled, what departed, what arrived) are kept in the database so that every
process sees the same state; after each event the affected snapshots are recomputed with the very
functions training used (:func:`features.live.window_stats`, :func:`features.live.arrival_stats`) and
pushed, so the online values match what the model was trained on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from features.errors import InvalidInput
from features.live import (
    ARRIVED_WINDOW,
    DEST_COLUMNS,
    LIVE_COLUMNS,
    SCHEDULED_WINDOW,
    arrival_stats,
    to_ns,
    window_stats,
)
from features.transforms import carrier_origin_key
from serving.bulk_insert import insert_if_absent
from serving.db import events, movements
from serving.schemas import EventIn, EventType



def _utc(stamp: datetime) -> datetime:
    """Instants are stored in UTC: SQLite keeps no offset, so 14:00-05:00 would read back as 14:00."""
    return stamp.astimezone(UTC)


def record_schedule(conn: Connection, *, shipments: list[dict]) -> None:
    """Remember decided shipments' schedules (each counts as 'not yet departed' until it departs), in the
    caller's transaction and one statement; a shipment already known is left as it is (insert if absent,
    so a concurrent decision for the same shipment neither fails nor aborts the transaction)."""
    rows = [{k: shipment.get(k) for k in ("shipment_id", "carrier", "origin", "destination")}
            | {k: _utc(datetime.fromisoformat(shipment[k])) for k in ("scheduled_departure", "scheduled_arrival")}
            for shipment in shipments]
    insert_if_absent(conn, movements, rows, key="shipment_id")


def _apply(conn, event: EventIn) -> None:
    known = conn.execute(select(movements.c.shipment_id).where(
        movements.c.shipment_id == event.shipment_id)).first()
    if known is None:
        missing = [f for f in ("carrier", "origin", "destination", "scheduled_at") if getattr(event, f) is None]
        if missing:
            raise InvalidInput(f"shipment {event.shipment_id} is unknown: the event needs {', '.join(missing)}",
                               field=missing[0])
        conn.execute(insert(movements).values(
            shipment_id=event.shipment_id, carrier=event.carrier, origin=event.origin,
            destination=event.destination, scheduled_departure=_utc(event.scheduled_at)))
    column = {EventType.DEPARTED: "actual_departure", EventType.ARRIVED: "actual_arrival"}.get(event.type)
    if column:
        conn.execute(update(movements).where(movements.c.shipment_id == event.shipment_id)
                     .values(**{column: _utc(event.occurred_at)}))


def record_event(engine: Engine, event: EventIn) -> bool:
    """Store the event (once per event_id) and update the movement; False if already received."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(events).values(event_id=event.event_id, type=event.type.value,
                                               shipment_id=event.shipment_id, occurred_at=_utc(event.occurred_at),
                                               payload=event.model_dump(mode="json"), received_at=datetime.now(UTC)))
            _apply(conn, event)
    except IntegrityError:
        return False
    return True


def _window(engine: Engine, column, key: str, at: datetime, span: timedelta) -> pd.DataFrame:
    query = select(movements).where(column == key, movements.c.scheduled_departure >= at - span - timedelta(hours=6),
                                    movements.c.scheduled_departure <= at + timedelta(hours=6))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in movements.columns])


def snapshots(engine: Engine, *, origin: str, carrier: str, destination: str, at: datetime) -> dict[str, pd.DataFrame]:
    """Live snapshots at ``at`` for the origin, the carrier at the origin, and the destination."""
    at_ns = np.array([pd.Timestamp(at).value], dtype=np.int64)
    stamp = pd.Timestamp(at).tz_convert("UTC")
    frames = {}
    by_origin = _window(engine, movements.c.origin, origin, at, SCHEDULED_WINDOW)
    for view, rows, key_name, key in (
            ("origin_live", by_origin, "origin", origin),
            ("carrier_live", by_origin[by_origin["carrier"] == carrier], "carrier_origin",
             carrier_origin_key(pd.Series([carrier]), pd.Series([origin])).iloc[0])):
        stats = window_stats(scheduled=to_ns(rows["scheduled_departure"]), departed=to_ns(rows["actual_departure"]),
                             at=at_ns)
        frames[view] = pd.DataFrame({key_name: [key], "event_timestamp": [stamp],
                                     **{f"{view}_{c}": [float(stats[c][0])] for c in LIVE_COLUMNS}})
    by_dest = _window(engine, movements.c.destination, destination, at, ARRIVED_WINDOW + timedelta(hours=12))
    stats = arrival_stats(scheduled=to_ns(by_dest["scheduled_arrival"]), arrived=to_ns(by_dest["actual_arrival"]), at=at_ns)
    frames["dest_live"] = pd.DataFrame({"destination": [destination], "event_timestamp": [stamp],
                                        **{f"dest_live_{c}": [float(stats[c][0])] for c in DEST_COLUMNS}})
    return frames


def push_snapshots(store, frames: dict[str, pd.DataFrame]) -> list[str]:
    """Write the snapshots to the online store through the push sources."""
    from features.feast_defs import PUSH_SOURCES
    from feast.data_source import PushMode

    for view, frame in frames.items():
        store.push(PUSH_SOURCES[view], frame, to=PushMode.ONLINE)
    return sorted(frames)


def movement_of(engine: Engine, shipment_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(movements).where(movements.c.shipment_id == shipment_id)).mappings().first()
    return dict(row) if row else None
