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

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(api_keys).values(key_id="k1", key_hash="h", role="admin", name="old",
                                             created_at=datetime.now(UTC)))
    create_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(api_keys)).scalar_one() == 1
    assert "alembic_version" in inspect(engine).get_table_names()
