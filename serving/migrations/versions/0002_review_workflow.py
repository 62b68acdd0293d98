"""review workflow: denormalized case columns, leases, case history, resolutions, queue indexes

Existing cases are backfilled from their decisions (carrier, lane, prediction, amounts, the new priority,
the four-eyes flag) and get their first history row ("created"). The backfill uses
``serving.case_facts`` as of this revision; should that module's contract change, freeze a copy here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_COLUMNS = (
    ("carrier", sa.String(8)), ("lane", sa.String(24)), ("predicted_class", sa.String(32)),
    ("confidence", sa.Float()), ("subject_amount", sa.Float()), ("claimed_by", sa.String(16)),
    ("claimed_by_name", sa.String(64)), ("lease_expires_at", sa.DateTime(timezone=True)),
    ("resolved_at", sa.DateTime(timezone=True)), ("approved_by", sa.String(64)),
)
INDEXES = {
    "ix_cases_queue": ["queue", "status", sa.text("priority DESC"), "sla_due_at"],
    "ix_cases_status_priority": ["status", sa.text("priority DESC"), "sla_due_at"],
    "ix_cases_status_carrier": ["status", "carrier", sa.text("priority DESC")],
    "ix_cases_status_lane": ["status", "lane", sa.text("priority DESC")],
    "ix_cases_status_class": ["status", "predicted_class", sa.text("priority DESC")],
    "ix_cases_status_sla": ["status", "sla_due_at"],
    "ix_cases_status_lease": ["status", "lease_expires_at"],
    "ix_cases_resolved": ["resolved_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_index("ix_cases_queue")
        batch.alter_column("status", existing_type=sa.String(16), type_=sa.String(24), existing_nullable=False)
        for name, type_ in NEW_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(sa.Column("needs_second_approval", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")))
    for name, columns in INDEXES.items():
        op.create_index(name, "review_cases", columns)
    op.create_table(
        "case_events",
        sa.Column("case_id", sa.String(36), sa.ForeignKey("review_cases.case_id"), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_key", sa.String(16)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(24)),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "seq"),
    )
    op.create_table(
        "case_resolutions",
        sa.Column("resolution_id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("review_cases.case_id"), nullable=False, unique=True),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("verdict", sa.String(24), nullable=False),
        sa.Column("amount", sa.Float()),
        sa.Column("reason_code", sa.String(32)),
        sa.Column("discrepancy", sa.String(32)),
        sa.Column("note", sa.Text()),
        sa.Column("label_class", sa.String(32)),
        sa.Column("overbilled_amount", sa.Float()),
        sa.Column("resolved_by", sa.String(16), nullable=False),
        sa.Column("resolved_by_name", sa.String(64), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128)),
        sa.Column("needs_second_approval", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_resolutions_decision", "case_resolutions", ["decision_id"])
    _backfill(op.get_bind())


def _high_value(conn, policy_id: str, cache: dict) -> float | None:
    """The policy's high-value threshold: the newest approved version, else the shipped document."""
    if policy_id in cache:
        return cache[policy_id]
    from rules_engine.loader import load_policy, parse_policy
    from serving.policy_store import POLICY_DIR

    row = conn.execute(sa.text("SELECT document FROM policy_versions WHERE policy_id = :p AND status = 'approved' "
                               "ORDER BY approved_at DESC LIMIT 1"), {"p": policy_id}).first()
    path = POLICY_DIR / f"{policy_id}.yaml"
    policy = parse_policy(row[0]) if row else (load_policy(path) if path.exists() else None)
    cache[policy_id] = policy.thresholds.get("high_value") if policy else None
    return cache[policy_id]


def _instant(value) -> datetime:
    """A stored creation time: PostgreSQL hands back a datetime, SQLite what was stored — ISO text from
    SQLAlchemy, or epoch seconds when the row was written untyped in a process where Feast registered its
    sqlite3 datetime adapter. Naive values are UTC."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, (int, float)) or str(value).isdigit():
        stamp = datetime.fromtimestamp(int(value), UTC)
    else:
        stamp = datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _backfill(conn) -> None:
    from serving.case_facts import case_facts, created_event

    cases = sa.table("review_cases", *(sa.column(c) for c in (
        "case_id", "carrier", "lane", "predicted_class", "confidence", "subject_amount", "amount_at_risk",
        "priority", "priority_label", "needs_second_approval")))
    events = sa.table("case_events", *(sa.column(c) for c in (
        "case_id", "seq", "actor", "actor_key", "role", "action", "from_status", "to_status")),
        sa.column("payload", sa.JSON()), sa.column("at", sa.DateTime(timezone=True)))
    decisions = sa.table("decisions", sa.column("decision_id"), sa.column("request", sa.JSON()),
                         sa.column("response", sa.JSON()), sa.column("policy_id"), sa.column("caller"))
    old = sa.table("review_cases", *(sa.column(c) for c in ("case_id", "decision_id", "kind", "queue", "reason")),
                   sa.column("created_at"))  # untyped: read back as stored, see _instant
    rows = conn.execute(sa.select(old, decisions.c.request, decisions.c.response, decisions.c.policy_id,
                                  decisions.c.caller)
                        .join(decisions, decisions.c.decision_id == old.c.decision_id)).mappings().all()
    lanes = dict(conn.execute(sa.text("SELECT shipment_id, origin || '-' || destination FROM movements")).all()) \
        if rows else {}
    thresholds: dict = {}
    for row in rows:
        params = next((a["params"] for a in row["response"]["actions"] if a["type"] == "enqueue_review"), {})
        facts = case_facts(row["kind"], request=row["request"], response=row["response"], params=params,
                           lane=lanes.get(row["request"].get("shipment_id")),
                           high_value=_high_value(conn, row["policy_id"], thresholds))
        conn.execute(sa.update(cases).where(cases.c.case_id == row["case_id"]).values(**facts))
        case = {**facts, "case_id": row["case_id"], "decision_id": row["decision_id"], "queue": row["queue"],
                "reason": row["reason"], "created_at": _instant(row["created_at"])}
        conn.execute(sa.insert(events).values(**created_event(case, caller=row["caller"])))


def downgrade() -> None:
    op.drop_index("ix_resolutions_decision", table_name="case_resolutions")
    op.drop_table("case_resolutions")
    op.drop_table("case_events")
    for name in INDEXES:
        op.drop_index(name, table_name="review_cases")
    with op.batch_alter_table("review_cases") as batch:
        for name, _ in (*NEW_COLUMNS, ("needs_second_approval", None), ("version", None)):
            batch.drop_column(name)
        batch.alter_column("status", existing_type=sa.String(24), type_=sa.String(16), existing_nullable=False)
    op.create_index("ix_cases_queue", "review_cases", ["queue", "status", "priority"])
