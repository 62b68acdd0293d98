"""Migrations: a fresh database reaches the schema the code declares; an older one is adopted, keeping data."""

from sqlalchemy import func, inspect, insert, select

from serving.db import api_keys, create_schema, make_engine, metadata


def test_fresh_database_gets_every_table_and_a_revision(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    create_schema(engine)  # a second start is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables and "alembic_version" in tables


def test_database_created_before_migrations_is_adopted_without_data_loss(tmp_path):
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from serving.migrate import BASELINE, alembic_config

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:  # the schema as it was before migrations existed (the baseline), unversioned
        config.attributes["connection"] = conn
        command.upgrade(config, BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        conn.execute(insert(api_keys).values(key_id="k1", key_hash="h", role="admin", name="old",
                                             created_at=datetime.now(UTC)))
    create_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(api_keys)).scalar_one() == 1
    assert "alembic_version" in inspect(engine).get_table_names()


def test_migrated_schema_is_exactly_what_the_code_declares(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(database_url)
    create_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []


def test_cases_from_before_the_review_workflow_are_backfilled(database_url):
    """A 0001 database with an open case: after the upgrade it has the queue columns and its first history row."""
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command

    from serving.db import case_events, review_cases
    from serving.migrate import alembic_config

    engine = make_engine(database_url)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    scores = {"probabilities": {"duplicate": 0.8, "clean": 0.2}, "predicted_class": "duplicate", "amount_at_risk": 640.0}
    response = {"scores": scores, "actions": [{"type": "enqueue_review", "params": {
        "queue": "freight-audit", "priority": "high", "amount_at_risk": 640.0}}]}
    # Instants typed, so SQLAlchemy stores them as the real tables do (untyped, sqlite3 would use whatever
    # datetime adapter the process registered: Feast's stores epoch seconds).
    instant = sa.DateTime(timezone=True)
    old_decisions = sa.table("decisions", *(sa.column(c) for c in (
        "decision_id", "kind", "subject_id", "idempotency_key", "request_hash", "outcome", "policy_id",
        "policy_version", "degraded", "caller")), sa.column("created_at", instant), *(sa.column(c, sa.JSON()) for c in (
            "request", "response", "features")))
    old_cases = sa.table("review_cases", *(sa.column(c) for c in (
        "case_id", "decision_id", "kind", "subject_id", "queue", "priority", "priority_label", "reason",
        "amount_at_risk", "status")), sa.column("sla_due_at", instant), sa.column("created_at", instant))
    movements = sa.table("movements", *(sa.column(c) for c in (
        "shipment_id", "carrier", "origin", "destination")), sa.column("scheduled_departure", instant))
    with engine.begin() as conn:
        conn.execute(sa.insert(old_decisions).values(
            decision_id="d1", kind="invoice", subject_id="INV-9", idempotency_key="k", request_hash="h",
            outcome="review", policy_id="invoice", policy_version="1.0.0", degraded=False, caller="orch",
            created_at=at, request={"carrier": "UA", "shipment_id": "S-9", "total": 6400.0}, response=response,
            features={}))
        conn.execute(sa.insert(movements).values(shipment_id="S-9", carrier="UA", origin="EWR", destination="SFO",
                                                 scheduled_departure=at))
        conn.execute(sa.insert(old_cases).values(
            case_id="c1", decision_id="d1", kind="invoice", subject_id="INV-9", queue="freight-audit",
            priority=3_000_640.0, priority_label="high", reason="duplicate", amount_at_risk=640.0, status="open",
            sla_due_at=at, created_at=at))
    create_schema(engine)
    with engine.connect() as conn:
        case = conn.execute(select(review_cases)).mappings().one()
        event = conn.execute(select(case_events)).mappings().one()
    assert (case["carrier"], case["lane"], case["predicted_class"]) == ("UA", "EWR-SFO", "duplicate")
    assert case["confidence"] == 0.8 and case["subject_amount"] == 6400.0 and case["version"] == 1
    assert case["priority"] == 640.0 * (0.5 + 0.2) * 2.0 and case["needs_second_approval"]  # 6,400 > 5,000
    assert (event["seq"], event["action"], event["to_status"], event["actor_key"]) == (1, "created", "open", "orch")
