"""The decision hot path's row-wise assembly equals the pandas assembly used to build training frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.assemble import LOOKED_UP, entity_keys, model_columns, model_frame, with_carrier
from features.transforms import entity_frame


@pytest.fixture(scope="module")
def shipments(march_sample) -> pd.DataFrame:
    sample = march_sample.dropna(subset=["scheduled_arrival"]).sample(n=400, random_state=3)
    frame = pd.DataFrame({
        "shipment_id": [f"S-{i}" for i in range(len(sample))], "carrier": sample["carrier"].to_numpy(),
        "origin": sample["origin"].to_numpy(), "destination": sample["destination"].to_numpy(),
        "scheduled_departure": sample["scheduled_departure"].to_numpy(),
        "scheduled_arrival": sample["scheduled_arrival"].to_numpy(),
        "distance_miles": sample["distance_miles"].astype(float).to_numpy(),
        "equipment_id": sample["equipment_id"].astype("string").to_numpy(),
    })
    frame.loc[::7, "distance_miles"] = np.nan  # optional in a request
    frame.loc[::5, "equipment_id"] = pd.NA
    # requests carry their own offsets: the same instants, expressed in New York and in Tokyo time
    frame["scheduled_departure"] = frame["scheduled_departure"].dt.tz_convert("America/New_York")
    frame["scheduled_arrival"] = frame["scheduled_arrival"].dt.tz_convert("Asia/Tokyo")
    return frame


def _rows(frame: pd.DataFrame) -> list[dict]:
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for key in ("scheduled_departure", "scheduled_arrival"):
            row[key] = row[key].to_pydatetime()
    return rows


def test_entity_keys_equal_the_entity_frame(shipments):
    expected = entity_frame(shipments).drop(columns=["shipment_id", "event_timestamp"])
    got = pd.DataFrame([entity_keys(r) for r in _rows(shipments)])[list(expected.columns)]
    pd.testing.assert_frame_equal(got, expected.astype(object), check_dtype=False)


def test_an_alternatives_keys_are_the_keys_of_the_shipment_with_that_carrier(shipments):
    for row in _rows(shipments)[:50]:
        for carrier in ("ZZ", row["carrier"]):
            assert with_carrier(entity_keys(row), carrier) == entity_keys({**row, "carrier": carrier})


def test_model_columns_equal_the_model_frame(shipments):
    rng = np.random.default_rng(11)
    looked_up = rng.normal(50.0, 30.0, size=(len(shipments), len(LOOKED_UP)))
    looked_up[rng.random(looked_up.shape) < 0.15] = np.nan  # features missing online
    epoch = LOOKED_UP.index("eq_last_departure_epoch")
    departures = shipments["scheduled_departure"].dt.tz_convert("UTC").astype("int64").to_numpy() / 1e9
    looked_up[:, epoch] = departures - rng.uniform(3_600, 40_000, len(shipments))
    looked_up[::9, epoch] = departures[::9] + rng.uniform(0, 20 * 86_400, len(departures[::9]))  # a later trip
    expected = model_frame(shipments, pd.DataFrame(looked_up, columns=LOOKED_UP))
    before = looked_up.copy()
    got = model_columns(_rows(shipments), looked_up)
    np.testing.assert_array_equal(looked_up, before)  # the caller's array is left as it was
    assert list(got) == list(expected.columns)
    for name in expected.columns:
        want = expected[name].to_numpy()
        if want.dtype == object:
            assert list(got[name]) == list(want), name
        else:
            np.testing.assert_allclose(np.asarray(got[name], dtype=float), want.astype(float), rtol=1e-12,
                                       atol=1e-9, equal_nan=True, err_msg=name)


def test_an_equipment_departure_after_the_decision_time_is_unknown_in_both_assemblies(shipments):
    """The online store keeps only the latest departure: one after this shipment's decision time (two
    hours before its scheduled departure) is not the value as of then, and both paths drop it."""
    frame = shipments.iloc[:4].reset_index(drop=True)
    decided = (frame["scheduled_departure"].dt.tz_convert("UTC").astype("int64").to_numpy() / 1e9) - 7_200
    looked_up = np.full((4, len(LOOKED_UP)), 7.0)
    epoch = LOOKED_UP.index("eq_last_departure_epoch")
    # 10 days after, 1 s after, exactly at, and 95 minutes before the decision time
    looked_up[:, epoch] = decided + np.array([864_000.0, 1.0, 0.0, -5_700.0])
    got = model_columns(_rows(frame), looked_up)
    expected = model_frame(frame, pd.DataFrame(looked_up, columns=LOOKED_UP))
    for name in ("eq_last_dep_delay", "eq_last_sched_block_minutes", "eq_minutes_since_last_departure",
                 "eq_rotation_slack_minutes"):
        np.testing.assert_array_equal(np.isnan(np.asarray(got[name], dtype=float)), [True, True, False, False], name)
        np.testing.assert_allclose(np.asarray(got[name], dtype=float), expected[name].to_numpy(float), equal_nan=True)
    assert list(got["eq_minutes_since_last_departure"][2:]) == [0.0, 95.0]
    assert list(got["eq_last_dep_delay"][2:]) == [7.0, 7.0]
    assert list(got["carrier_late_rate_30d"]) == [7.0] * 4  # the other views are untouched
