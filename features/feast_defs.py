"""Feast object definitions for the delay-risk features.

Built by a function (not at import time) so that the same definitions can point at the repo's own data
folder (``features/feature_repo``) or at a test's ``tmp_path``. A FeatureService is versioned with the
model that uses it: training reads it with ``get_historical_features`` and serving with
``get_online_features``, so the two can never disagree on which features a model sees.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64

from features.live import DEST_COLUMNS, EQUIPMENT_COLUMNS, LIVE_COLUMNS

FEATURE_SERVICE = "delay_risk_v1"

TABLES = ("carrier_perf", "lane_perf", "origin_weather", "origin_schedule", "origin_live",
          "carrier_live", "dest_live", "equipment_rotation")
PUSH_SOURCES = {"origin_live": "origin_live_push", "carrier_live": "carrier_live_push",
                "dest_live": "dest_live_push"}

_ENTITY_KEYS = {
    "carrier_perf": "carrier", "lane_perf": "lane", "origin_weather": "origin",
    "origin_schedule": "origin_hour", "origin_live": "origin", "carrier_live": "carrier_origin",
    "dest_live": "destination",
    "equipment_rotation": "equipment_id",
}
_TTL = {
    "carrier_perf": timedelta(days=2), "lane_perf": timedelta(days=2),
    "origin_weather": timedelta(hours=3), "origin_schedule": timedelta(days=3),
    "origin_live": timedelta(hours=1), "carrier_live": timedelta(hours=1), "dest_live": timedelta(hours=1),
    "equipment_rotation": timedelta(days=2),
}
_WEATHER = ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib")


def feature_columns(table: str) -> list[str]:
    """Value columns of a feature table, in a fixed order."""
    if table in ("carrier_perf", "lane_perf"):
        prefix = table.split("_")[0]
        return [f"{prefix}_late_rate_30d", f"{prefix}_mean_delay_30d", f"{prefix}_volume_30d"]
    if table == "origin_weather":
        return [f"weather_{name}" for name in _WEATHER]
    if table == "origin_schedule":
        return ["sched_departures_origin_hour", "sched_departures_origin_day"]
    if table in ("origin_live", "carrier_live"):
        return [f"{table}_{name}" for name in LIVE_COLUMNS]
    if table == "dest_live":
        return [f"dest_live_{name}" for name in DEST_COLUMNS]
    if table == "equipment_rotation":
        return list(EQUIPMENT_COLUMNS)
    raise KeyError(table)


def entity_key(table: str) -> str:
    """Join key of a feature table."""
    return _ENTITY_KEYS[table]


def table_path(data_dir: Path, table: str) -> Path:
    """Where a feature table's Parquet file lives."""
    return Path(data_dir) / f"{table}.parquet"


def build_definitions(data_dir: Path) -> list:
    """Entities, sources, feature views and the versioned FeatureService, reading from ``data_dir``."""
    entities = {key: Entity(name=key, join_keys=[key], value_type=ValueType.STRING)
                for key in sorted(set(_ENTITY_KEYS.values()))}
    views = []
    push_sources = []
    for table in TABLES:
        source = FileSource(name=f"{table}_source", path=str(table_path(data_dir, table).resolve()),
                            timestamp_field="event_timestamp")
        if table in PUSH_SOURCES:
            source = PushSource(name=PUSH_SOURCES[table], batch_source=source)
            push_sources.append(source)
        views.append(FeatureView(
            name=table, entities=[entities[_ENTITY_KEYS[table]]], ttl=_TTL[table], online=True,
            schema=[Field(name=col, dtype=Float64) for col in feature_columns(table)], source=source,
        ))
    service = FeatureService(name=FEATURE_SERVICE, features=views,
                             description="Delay-risk model v1: trailing, weather, schedule, live, rotation")
    return [*entities.values(), *push_sources, *views, service]
