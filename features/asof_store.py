"""A Feast offline store whose point-in-time join is an as-of merge: O(n log n), not a range join.

Feast's DuckDB (ibis) store joins each feature view with ``key = key AND ts <= entity_ts AND
ts + ttl >= entity_ts`` and deduplicates: DuckDB runs that as a hash join on the key followed by a
filter, so a low-cardinality key (three origins) pairs every decision with every row of its origin —
22 billion pairs for the live-congestion view, 67 s. An as-of merge gives the same rows in ~1 s.

Everything else (sources, materialization, pulls, the registry, FeatureServices) is the DuckDB store's.
Same semantics, checked against the stock store by ``tests/features/test_asof_store.py``: the latest
row at or before the entity timestamp, within the view's TTL (none when TTL is 0), missing keys NaN.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from pydantic import StrictStr


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """``offline_store: {type: features.asof_store.AsofDuckDBOfflineStore}``."""

    type: StrictStr = "features.asof_store.AsofDuckDBOfflineStore"


class FrameRetrievalJob(RetrievalJob):
    """A retrieval whose result is already computed."""

    def __init__(self, frame: pd.DataFrame, *, full_feature_names: bool, metadata: RetrievalMetadata) -> None:
        super().__init__()
        self._frame, self._full, self._meta = frame, full_feature_names, metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full

    @property
    def on_demand_feature_views(self) -> list:
        return []

    @property
    def metadata(self) -> RetrievalMetadata:
        return self._meta

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:  # noqa: ARG002
        return self._frame.copy()

    def _to_arrow_internal(self, timeout: int | None = None) -> pyarrow.Table:  # noqa: ARG002
        return pyarrow.Table.from_pandas(self._frame, preserve_index=False)

    def persist(self, storage, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        raise NotImplementedError("saved datasets are not used by Tollgate")


def _read_view(view, refs: list[str], repo_path: Path | None) -> tuple[pd.DataFrame, list[str], str]:
    source = view.batch_source
    path = Path(source.path)
    if not path.is_absolute() and repo_path is not None:
        path = Path(repo_path) / path
    frame = pd.read_parquet(path)
    if source.field_mapping:
        frame = frame.rename(columns=dict(source.field_mapping))
    keys = [view.projection.join_key_map.get(e.name, e.name) for e in view.entity_columns]
    key_source = [e.name for e in view.entity_columns]
    frame = frame.rename(columns=dict(zip(key_source, keys, strict=True)))
    ts = source.timestamp_field
    frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return frame[[*keys, ts, *refs]], keys, ts


def _join_view(entities: pd.DataFrame, view, refs: list[str], *, ts_col: str, full: bool,
               repo_path: Path | None) -> pd.DataFrame:
    rows, keys, ts = _read_view(view, refs, repo_path)
    rows = rows.sort_values(ts, kind="stable").rename(columns={ts: "__feature_ts"})
    left = entities[["__row", ts_col, *keys]].sort_values(ts_col, kind="stable")
    tolerance = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None
    merged = pd.merge_asof(left, rows, left_on=ts_col, right_on="__feature_ts", by=keys,
                           direction="backward", allow_exact_matches=True, tolerance=tolerance)
    prefix = view.projection.name_to_use()
    names = {r: (f"{prefix}__{r}" if full else r) for r in refs}
    return merged.set_index("__row")[refs].rename(columns=names)


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    """DuckDB offline store with an as-of point-in-time join for DataFrame entity inputs."""

    @staticmethod
    def get_historical_features(config, feature_views, feature_refs, entity_df, registry, project,
                                full_feature_names: bool = False, filter_by_created_timestamp: bool = False,
                                ) -> RetrievalJob:
        if not isinstance(entity_df, pd.DataFrame) or any(v.batch_source.created_timestamp_column
                                                          for v in feature_views):
            return DuckDBOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project,
                full_feature_names, filter_by_created_timestamp)
        schema = dict(zip(entity_df.columns, entity_df.dtypes, strict=True))
        ts_col = offline_utils.infer_event_timestamp_from_entity_df(schema)
        entities = entity_df.copy()
        entities[ts_col] = pd.to_datetime(entities[ts_col], utc=True)
        entities["__row"] = range(len(entities))
        by_view = {}
        for ref in feature_refs:
            view_name, feature = ref.split(":", 1)
            by_view.setdefault(view_name, []).append(feature)
        parts = [entities.set_index("__row")]
        for view in feature_views:
            refs = by_view.get(view.projection.name_to_use(), [])
            if refs:
                parts.append(_join_view(entities, view, refs, ts_col=ts_col, full=full_feature_names,
                                        repo_path=config.repo_path))
        result = pd.concat(parts, axis=1).sort_index().reset_index(drop=True)
        metadata = RetrievalMetadata(features=feature_refs, keys=[c for c in entity_df.columns if c != ts_col],
                                     min_event_timestamp=entities[ts_col].min(),
                                     max_event_timestamp=entities[ts_col].max())
        return FrameRetrievalJob(result, full_feature_names=full_feature_names, metadata=metadata)
