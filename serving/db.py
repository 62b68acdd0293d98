"""Persistence: decision log (append-only), idempotency, review cases and their history, API keys, policies.

SQLAlchemy Core over a SQLite file (WAL) by default, PostgreSQL via ``TOLLGATE_DATABASE_URL``. All state
lives here, so several service processes can share one database; uniqueness constraints (not process
memory) make a retried request yield one decision.
"""

from __future__ import annotations

import weakref

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    false,
    text,
)
from sqlalchemy.engine import Engine

from serving.jsontext import dumps
from serving.sqlite_writers import BACKSTOP_PAGES, QueuedWriterConnection, checkpointer

metadata = MetaData()

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

decisions = Table(
    "decisions", metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("request", JSON, nullable=False),
    Column("response", JSON, nullable=False),
    Column("features", JSON, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("model_name", String(64)),
    Column("model_version", String(32)),
    Column("policy_id", String(64), nullable=False),
    Column("policy_version", String(32), nullable=False),
    Column("feature_service", String(64)),
    Column("degraded", Boolean, nullable=False),
    Column("caller", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_decisions_created", decisions.c.created_at)
Index("ix_decisions_subject", decisions.c.kind, decisions.c.subject_id)

review_cases = Table(
    "review_cases", metadata,
    Column("case_id", String(36), primary_key=True),
    Column("decision_id", String(36), ForeignKey("decisions.decision_id"), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("queue", String(32), nullable=False),
    Column("priority", Float, nullable=False),
    Column("priority_label", String(16), nullable=False),
    Column("reason", String(64)),
    Column("amount_at_risk", Float),
    Column("status", String(24), nullable=False),  # open | awaiting_approval | resolved
    Column("sla_due_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Denormalized from the decision (revision 0002) so the queue filters and sorts without JSON.
    Column("carrier", String(8)),
    Column("lane", String(24)),
    Column("predicted_class", String(32)),
    Column("confidence", Float),
    Column("subject_amount", Float),
    Column("needs_second_approval", Boolean, nullable=False, server_default=false()),
    # Current state, changed only by compare-and-set on ``version`` (= the seq of the last event).
    Column("claimed_by", String(16)),
    Column("claimed_by_name", String(64)),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("approved_by", String(64)),
    Column("version", Integer, nullable=False, server_default=text("1")),
)
Index("ix_cases_queue", review_cases.c.queue, review_cases.c.status, review_cases.c.priority.desc(),
      review_cases.c.sla_due_at)
Index("ix_cases_status_priority", review_cases.c.status, review_cases.c.priority.desc(), review_cases.c.sla_due_at)
Index("ix_cases_status_carrier", review_cases.c.status, review_cases.c.carrier, review_cases.c.priority.desc())
Index("ix_cases_status_lane", review_cases.c.status, review_cases.c.lane, review_cases.c.priority.desc())
Index("ix_cases_status_class", review_cases.c.status, review_cases.c.predicted_class, review_cases.c.priority.desc())
Index("ix_cases_status_sla", review_cases.c.status, review_cases.c.sla_due_at)
Index("ix_cases_status_lease", review_cases.c.status, review_cases.c.lease_expires_at)
Index("ix_cases_resolved", review_cases.c.resolved_at)

case_events = Table(
    "case_events", metadata,  # append-only: a case's history, one row per state change
    Column("case_id", String(36), ForeignKey("review_cases.case_id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("actor", String(64), nullable=False),
    Column("actor_key", String(16)),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

case_resolutions = Table(
    "case_resolutions", metadata,  # append-only: the verdict that resolved a case (one per case)
    Column("resolution_id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("review_cases.case_id"), nullable=False, unique=True),
    Column("decision_id", String(36), nullable=False),
    Column("verdict", String(24), nullable=False),
    Column("amount", Float),
    Column("reason_code", String(32)),
    Column("discrepancy", String(32)),
    Column("note", Text),
    Column("label_class", String(32)),
    Column("overbilled_amount", Float),
    Column("resolved_by", String(16), nullable=False),
    Column("resolved_by_name", String(64), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("idempotency_key", String(128)),
    Column("needs_second_approval", Boolean, nullable=False),
)
Index("ix_resolutions_decision", case_resolutions.c.decision_id)

movements = Table(
    "movements", metadata,
    Column("shipment_id", String(64), primary_key=True),
    Column("carrier", String(8), nullable=False),
    Column("origin", String(8), nullable=False),
    Column("destination", String(8), nullable=False),
    Column("scheduled_departure", DateTime(timezone=True), nullable=False),
    Column("scheduled_arrival", DateTime(timezone=True)),
    Column("actual_departure", DateTime(timezone=True)),
    Column("actual_arrival", DateTime(timezone=True)),
)
Index("ix_movements_origin", movements.c.origin, movements.c.scheduled_departure)
Index("ix_movements_dest", movements.c.destination, movements.c.actual_arrival)

events = Table(
    "events", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("shipment_id", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

invoices_seen = Table(
    "invoices_seen", metadata,
    Column("invoice_id", String(64), primary_key=True),
    Column("carrier", String(8), nullable=False),
    Column("shipment_id", String(64), nullable=False),
    Column("invoice_date", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("total", Float, nullable=False),
    Column("billed_weight_kg", Float),
    Column("lines", JSON, nullable=False),
    # What later invoices' look-back features need of this one (revision 0003; features.rerating.KNOWN_CONTEXT).
    Column("origin", String(8)),
    Column("destination", String(8)),
    Column("scheduled_departure", DateTime(timezone=True)),
    Column("is_spot", Boolean),
    Column("chargeable_weight_kg", Float),
)
Index("ix_invoices_seen_carrier", invoices_seen.c.carrier, invoices_seen.c.invoice_date)
Index("ix_invoices_seen_received", invoices_seen.c.carrier, invoices_seen.c.received_at)

policy_versions = Table(
    "policy_versions", metadata,
    Column("proposal_id", String(36), primary_key=True),
    Column("policy_id", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("document", Text, nullable=False),
    Column("status", String(16), nullable=False),  # proposed | approved | rejected
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("approved_by", String(64)),
    Column("approved_at", DateTime(timezone=True)),
)
Index("ux_policy_version", policy_versions.c.policy_id, policy_versions.c.version, unique=True)


def make_engine(url: str) -> Engine:
    """Engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys, queued writers and a background
    checkpointer (:mod:`serving.sqlite_writers`)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                  "factory": QueuedWriterConnection}, json_serializer=dumps)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # checkpoints run in the background
            cursor.close()

        background = checkpointer(engine.url.database or "")
        if background is not None:
            weakref.finalize(engine, background.stop)  # the thread ends with the engine
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True, json_serializer=dumps)


def create_schema(engine: Engine) -> None:
    """Migrate the database to the newest schema revision (Alembic; see ``serving.migrate``)."""
    from serving.migrate import upgrade

    upgrade(engine)
