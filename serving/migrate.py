"""Schema migrations with Alembic: every start upgrades the database to the newest revision in place.

Schema changes are revisions under ``serving/migrations/versions`` (``alembic revision --autogenerate``
against ``serving.db.metadata``), so a deployed database changes without losing its decision log.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


BASELINE = "0001"


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision (idempotent; concurrent starts serialise on a lock).

    A database created before migrations existed (tables present, no ``alembic_version``) is adopted at
    the baseline revision, then upgraded.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(72657613)"))
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "decisions" in tables and "alembic_version" not in tables:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
