"""insert_rows stores what SQLAlchemy's own executemany stores, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from serving.bulk_insert import insert_if_absent, insert_rows
from serving.db import create_schema, decisions, make_engine, movements


def _decision(i: int, *, prefix: str) -> dict:
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC) + timedelta(seconds=i % 3)  # repeated values, memoized
    return {"decision_id": f"{prefix}-{i}", "kind": "shipment", "subject_id": f"S{i}", "idempotency_key": f"{prefix}:{i}",
            "request_hash": "h" * 64, "request": {"shipment_id": f"S{i}", "n": i, "nested": [1.5, None, "x"]},
            "response": msgspec.Raw(b'{"decision_id":"%b","p":0.25}' % f"{prefix}-{i}".encode()) if i % 2
            else {"decision_id": f"{prefix}-{i}", "p": float("nan")},
            "features": {"a": 1.0 / 3.0, "b": None}, "outcome": "approve", "model_name": None if i % 4 else "m",
            "model_version": "3", "policy_id": "delay", "policy_version": "1.0.0", "feature_service": "fs",
            "degraded": bool(i % 2), "caller": "k1", "created_at": at}


def test_the_stored_rows_equal_sqlalchemys(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        insert_rows(conn, decisions, [_decision(i, prefix="fast") for i in range(7)])
        conn.execute(insert(decisions), [_decision(i, prefix="orm") for i in range(7)])
    columns = [c for c in decisions.c if c.name not in ("decision_id", "idempotency_key", "response")]
    with engine.connect() as conn:
        fast = conn.execute(select(*columns).where(decisions.c.decision_id.like("fast-%"))
                            .order_by(decisions.c.subject_id)).all()
        orm = conn.execute(select(*columns).where(decisions.c.decision_id.like("orm-%"))
                           .order_by(decisions.c.subject_id)).all()
        # the very text stored, not only what it reads back as (except the responses, which carry the id)
        raw = "SELECT request, features, created_at, degraded FROM decisions WHERE decision_id LIKE :p ORDER BY subject_id"
        fast_text = conn.execute(text(raw), {"p": "fast-%"}).all()
        orm_text = conn.execute(text(raw), {"p": "orm-%"}).all()
        responses = dict(conn.execute(select(decisions.c.decision_id, decisions.c.response)).all())
    assert len(fast) == 7 and fast == orm
    assert fast_text == orm_text
    # pre-encoded JSON (msgspec.Raw) is stored as it is; a dict is encoded (NaN as null) either way
    assert responses["fast-1"] == {"decision_id": "fast-1", "p": 0.25} == {**responses["orm-1"], "decision_id": "fast-1"}
    assert responses["fast-0"] == {"decision_id": "fast-0", "p": None}
    assert _utc(fast[0].created_at) == datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    engine.dispose()


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no offset


def test_a_duplicate_key_is_an_integrity_error_and_writes_nothing(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        insert_rows(conn, decisions, [_decision(0, prefix="a")])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_rows(conn, decisions, [_decision(1, prefix="a"), _decision(0, prefix="a")])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar() == 1
    engine.dispose()


def test_insert_if_absent_keeps_the_first_schedule(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    eastern = timezone(timedelta(hours=-5))
    row = {"shipment_id": "S1", "carrier": "AA", "origin": "JFK", "destination": "LAX",
           "scheduled_departure": datetime(2013, 12, 1, 9, tzinfo=eastern).astimezone(UTC),
           "scheduled_arrival": datetime(2013, 12, 1, 12, tzinfo=eastern).astimezone(UTC)}
    with engine.begin() as conn:
        insert_if_absent(conn, movements, [row], key="shipment_id")
        insert_if_absent(conn, movements, [{**row, "carrier": "DL"}, {**row, "shipment_id": "S2"}], key="shipment_id")
    with engine.connect() as conn:
        found = conn.execute(select(movements.c.shipment_id, movements.c.carrier,
                                    movements.c.scheduled_departure).order_by(movements.c.shipment_id)).all()
    assert [(r.shipment_id, r.carrier) for r in found] == [("S1", "AA"), ("S2", "AA")]
    assert _utc(found[0].scheduled_departure) == datetime(2013, 12, 1, 14, tzinfo=UTC)
    engine.dispose()


def test_equal_instants_in_other_zones_are_converted_each_as_sqlalchemy_would(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    utc = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    eastern = utc.astimezone(timezone(timedelta(hours=-5)))  # equal to utc, another wall time
    with engine.begin() as conn:
        insert_rows(conn, decisions, [{**_decision(0, prefix="fast"), "created_at": utc},
                                      {**_decision(1, prefix="fast"), "created_at": eastern}])
        conn.execute(insert(decisions), [{**_decision(0, prefix="orm"), "created_at": utc},
                                         {**_decision(1, prefix="orm"), "created_at": eastern}])
    raw = "SELECT created_at FROM decisions WHERE decision_id LIKE :p ORDER BY subject_id"
    with engine.connect() as conn:
        assert conn.execute(text(raw), {"p": "fast-%"}).all() == conn.execute(text(raw), {"p": "orm-%"}).all()
    engine.dispose()
