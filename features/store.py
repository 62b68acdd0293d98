"""The Feast feature store: configuration, apply, offline joins, materialization, online reads.

The store is configured in code from :class:`StoreSettings` (environment-overridable) rather than by
``feature_store.yaml`` alone, so tests can point it at ``tmp_path`` and select SQLite or Redis.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
from feast import FeatureStore
from feast.repo_config import RepoConfig
from pydantic import BaseModel, ConfigDict, Field
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from features.errors import FeaturesUnavailable
from features.feast_defs import FEATURE_SERVICE, TABLES, build_definitions, feature_columns, table_path

DEFAULT_REPO = Path(__file__).parent / "feature_repo"
ASOF_STORE = "features.asof_store.AsofDuckDBOfflineStore"


class StoreSettings(BaseModel):
    """Where the Feast repo lives and which online store it uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo_dir: Path = DEFAULT_REPO
    project: str = Field(default="tollgate", pattern=r"^[a-z][a-z0-9_]*$")
    online: str = Field(default="sqlite", pattern=r"^(sqlite|redis)$")
    redis_url: str = "127.0.0.1:6379"
    offline: str = Field(default="asof", pattern=r"^(asof|duckdb)$")

    @classmethod
    def from_env(cls, **overrides: object) -> StoreSettings:
        """Settings from ``TOLLGATE_FEAST_REPO``, ``TOLLGATE_ONLINE_STORE``, ``TOLLGATE_REDIS_URL``."""
        env = {
            "repo_dir": os.environ.get("TOLLGATE_FEAST_REPO"),
            "project": os.environ.get("TOLLGATE_FEAST_PROJECT"),
            "online": os.environ.get("TOLLGATE_ONLINE_STORE"),
            "redis_url": os.environ.get("TOLLGATE_REDIS_URL"),
        }
        values = {k: v for k, v in env.items() if v} | {k: v for k, v in overrides.items() if v is not None}
        return cls(**values)

    @property
    def data_dir(self) -> Path:
        return self.repo_dir / "data"


REDIS_TIMEOUT_SECONDS = 2
"""Default socket timeouts of the Redis online store (an explicit one in TOLLGATE_REDIS_URL wins)."""


def redis_retry() -> Retry:
    """One immediate retry, on a dropped connection only (a pooled socket gone stale after a Redis
    restart). redis-py's default also retries timeouts, three times with backoff, which multiplied a
    1 s socket timeout into a 10.6 s read against a Redis that never answers."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def open_store(settings: StoreSettings) -> FeatureStore:
    """A FeatureStore over ``settings.repo_dir`` with a Parquet offline store."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.online == "redis":
        # A Redis that stops answering must end in 'features unavailable' (a degraded decision), not a
        # request that waits for ever: the decision path holds its worker's event loop while it reads.
        connection = settings.redis_url
        for option in ("socket_timeout", "socket_connect_timeout"):
            if f"{option}=" not in connection:
                connection += f",{option}={REDIS_TIMEOUT_SECONDS}"
        online = {"type": "redis", "connection_string": connection}
    else:
        online = {"type": "sqlite", "path": str(settings.data_dir / "online.db")}
    offline = ASOF_STORE if settings.offline == "asof" else "duckdb"
    config = RepoConfig(project=settings.project, provider="local",
                        registry=str(settings.data_dir / "registry.db"),
                        offline_store={"type": offline}, online_store=online,
                        repo_path=settings.repo_dir, entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    if settings.online == "redis":
        # the client is made lazily and takes no Retry from the connection string (its values are JSON)
        online_store = store._get_provider().online_store  # noqa: SLF001 - the configured online store
        online_store._get_client(store.config.online_store).set_retry(redis_retry())  # noqa: SLF001
    return store


def write_tables(tables: dict[str, pd.DataFrame], data_dir: Path) -> None:
    """Write every feature table to Parquet (atomically per file: write, then rename)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        target = table_path(data_dir, table)
        tmp = target.with_suffix(".parquet.tmp")
        tables[table].to_parquet(tmp, index=False)
        tmp.replace(target)


def write_lane_carriers(carriers: dict[str, list[str]], data_dir: Path) -> None:
    """Reroute candidates per lane, beside the feature tables (read by serving)."""
    import json

    target = data_dir / "lane_carriers.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(carriers, sort_keys=True))
    tmp.replace(target)


def read_lane_carriers(data_dir: Path) -> dict[str, list[str]]:
    import json

    path = data_dir / "lane_carriers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def apply(store: FeatureStore, settings: StoreSettings) -> None:
    """Register entities, sources, views and the FeatureService."""
    store.apply(build_definitions(settings.data_dir))


def historical_features(store: FeatureStore, entity_df: pd.DataFrame,
                        service: str = FEATURE_SERVICE) -> pd.DataFrame:
    """Point-in-time join of the service's features onto ``entity_df`` (rows keep their order)."""
    frame = entity_df.reset_index(drop=True).copy()
    frame["_row"] = range(len(frame))
    job = store.get_historical_features(entity_df=frame, features=store.get_feature_service(service))
    joined = job.to_df().sort_values("_row").reset_index(drop=True)
    return joined.drop(columns=["_row"])


def materialize(store: FeatureStore, *, start: datetime, end: datetime) -> None:
    """Load the latest value of every entity (within each view's TTL) of the delay feature views into the
    online store. Only those: the registry may also hold the invoice reference views, which
    ``tollgate load`` materializes from their own files (they may not exist yet).

    Feast prints progress on stdout; it goes to stderr so ``--json`` output stays one JSON object.
    """
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        store.materialize(start_date=start, end_date=end, feature_views=list(TABLES))


def online_features(store: FeatureStore, entity_rows: list[dict[str, str]],
                    service: str = FEATURE_SERVICE) -> pd.DataFrame:
    """Online lookup of the service's features for each entity row; missing entities come back NaN."""
    try:
        response = store.get_online_features(features=store.get_feature_service(service),
                                             entity_rows=entity_rows)
    except Exception as exc:  # noqa: BLE001 - any backend failure means features are unavailable
        raise FeaturesUnavailable(f"online feature lookup failed: {exc}") from exc
    return response.to_df()


def all_feature_columns() -> list[str]:
    """Every value column the FeatureService returns, in table order."""
    return [col for table in TABLES for col in feature_columns(table)]
