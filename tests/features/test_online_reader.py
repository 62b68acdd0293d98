"""The fast online reader returns what Feast's SDK returns, on SQLite and on Redis."""

from functools import partial

import numpy as np
import pytest

from features import store as feature_store
from features.errors import FeaturesUnavailable
from features.online import OnlineReader
from features.transforms import entity_frame
from tests.features.online_stores import materialized_store

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_reader_agrees_with_the_sdk(tmp_path, march_sample, online, monkeypatch):
    _, store = materialized_store(tmp_path / "repo", march_sample, online=online, prefix="r")
    rows = entity_frame(march_sample.tail(40)).drop(columns=["shipment_id", "event_timestamp"]).to_dict("records")
    rows += [{**row, "carrier": "UA"} for row in rows[:7]]  # alternatives: keys repeat in most views
    rows.append({k: "NOPE" for k in rows[0]})
    sdk = feature_store.online_features(store, rows)
    fast_reader = OnlineReader(store, "delay_risk_v1")
    fast = fast_reader.read(rows)
    for column in fast.columns:
        np.testing.assert_allclose(fast[column].to_numpy(dtype=float), sdk[column].to_numpy(dtype=float),
                                   equal_nan=True, err_msg=column)
    assert fast.iloc[-1].isna().all()
    by_feast = OnlineReader(store, "delay_risk_v1")  # Feast's own online_read, a call per view
    by_feast._tables = by_feast._hashes = None
    others = [by_feast]
    if online == "sqlite":  # and the one-statement read split into one statement a view
        split = OnlineReader(store, "delay_risk_v1")
        split._read_sqlite = partial(split._read_sqlite, max_parameters=1)
        others.append(split)
        monkeypatch.setattr("features.online.SERIALIZED_KEYS", 3)  # its key memo emptied again and again
        bounded = OnlineReader(store, "delay_risk_v1")
        others += [bounded, bounded]
    else:  # the one-pipeline read is what ran above; its per-view fields, kept from the start, still hold
        assert fast_reader._hashes is not None
        others.append(fast_reader)
    for other in others:
        np.testing.assert_array_equal(other.values(rows), fast.to_numpy(dtype=float))
    with monkeypatch.context() as batch_sized:  # the forms a batch takes (pandas' factorize, numpy's decoding)
        batch_sized.setattr("features.online.MANY", 1)
        np.testing.assert_array_equal(OnlineReader(store, "delay_risk_v1").values(rows), fast.to_numpy(dtype=float))
    if online == "sqlite":
        assert 0 < len(bounded._keys) <= 3 and len(fast_reader._keys) > 3
    with pytest.raises(FeaturesUnavailable):
        OnlineReader(store, "delay_risk_v1").read([{"carrier": "AA"}])
    if online == "redis":
        store.teardown()
