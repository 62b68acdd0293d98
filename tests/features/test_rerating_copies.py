"""Exact-copy duplicate candidates, hand-computed on a tiny lane, and their no-peeking property.

Lane AA JFK-ORD: C1 and C2 depart 3 hours apart on March 5, C3 on March 25. One storage day ($50) is
billed for C1 on March 10; the same bill comes again on March 18 under C2 (a copy on the neighbouring
shipment); C3's own storage day on March 30 matches both earlier bills by amount, but its shipment left
weeks later. C1's main bill is re-sent on March 20 (same shipment). C2's re-delivery ($60) has no copy.
C4 departs on March 15, between C2 and C3; its main bill arrives on March 22, before C3's storage day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.rerating import FEATURE_NAMES
from features.rerating_copies import COPY_FEATURES, exact_copy_features, line_signature

UTC = "UTC"
DEPARTURE = {"C1": "2013-03-05T08:00", "C2": "2013-03-05T11:00", "C3": "2013-03-25T08:00",
             "C4": "2013-03-15T09:00", "C9": None}
BILLS = [  # invoice_id, shipment_id, invoice date, lines
    ("AA0002001", "C1", "2013-03-08", {"linehaul": 300.0, "fuel": 40.5}),
    ("AA0002002", "C2", "2013-03-08", {"linehaul": 310.0, "fuel": 41.85}),
    ("AA0002003", "C1", "2013-03-10", {"storage": 50.0}),
    ("AA0002004", "C2", "2013-03-18", {"storage": 50.0}),
    ("AA0002005", "C1", "2013-03-20", {"fuel": 40.5, "linehaul": 300.0}),
    ("AA0002006", "C2", "2013-03-21", {"redelivery": 60.0}),
    ("AA0002010", "C4", "2013-03-22", {"linehaul": 280.0, "fuel": 37.8}),
    ("AA0002007", "C3", "2013-03-30", {"storage": 50.0}),
    ("AA0002008", "C9", "2013-06-30", {"storage": 50.0}),  # more than 60 days after the last one
]


def _frames(bills=BILLS) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.to_datetime([b[2] for b in bills], utc=True)
    frame = pd.DataFrame({
        "invoice_id": [b[0] for b in bills], "shipment_id": [b[1] for b in bills], "carrier": "AA",
        "origin": "JFK", "destination": "ORD", "invoice_date": dates,
        "departure": pd.to_datetime([DEPARTURE[b[1]] for b in bills], utc=True)})
    frame["order"] = frame["invoice_date"].rank(method="first").astype(int)
    lines = pd.DataFrame([{"invoice_id": b[0], "code": code, "amount": amount}
                          for b in bills for code, amount in b[3].items()])
    return frame, lines


@pytest.fixture(scope="module")
def copies() -> pd.DataFrame:
    frame, lines = _frames()
    return exact_copy_features(frame, lines).set_axis(frame["invoice_id"])


def test_the_copy_features_are_audit_features():
    assert set(COPY_FEATURES) <= set(FEATURE_NAMES)


def test_a_signature_is_the_sorted_line_multiset_in_cents():
    _, lines = _frames()
    signature = line_signature(lines)
    assert signature["AA0002001"] == "fuel:4050|linehaul:30000"
    assert signature["AA0002005"] == signature["AA0002001"]  # line order does not matter


def test_a_bill_copied_onto_the_neighbouring_shipment(copies):
    copy = copies.loc["AA0002004"]
    assert copy["exact_copy_count"] == 1.0 and copy["exact_copy_same_shipment"] == 0.0
    assert copy["exact_copy_departure_gap_hours"] == pytest.approx(3.0)
    assert copy["exact_copy_days"] == 8.0 and copy["exact_copy_accessorial_only"] == 1.0
    assert copy["exact_copy_shipments_between"] == 0.0  # C1 and C2 are neighbours on the lane


def test_shipments_between_counts_lane_departures_billed_before_the_copy(copies):
    later = copies.loc["AA0002007"]  # candidate original C2 (March 5); C4 left in between (March 15)
    assert later["exact_copy_shipments_between"] == 1.0
    frame, lines = _frames([b for b in BILLS if b[0] != "AA0002010"])
    without = exact_copy_features(frame, lines).set_axis(frame["invoice_id"])
    assert without.loc["AA0002007", "exact_copy_shipments_between"] == 0.0  # C4 never billed: not seen
    late = [b for b in BILLS if b[0] != "AA0002010"] + [("AA0002010", "C4", "2013-04-02", {"linehaul": 280.0})]
    frame, lines = _frames(late)
    after = exact_copy_features(frame, lines).set_axis(frame["invoice_id"])
    assert after.loc["AA0002007", "exact_copy_shipments_between"] == 0.0  # billed after the copy: unseen


def test_the_candidate_original_is_the_nearest_departure_not_the_latest_bill(copies):
    later = copies.loc["AA0002007"]  # matches C1's bill (20 days apart) and C2's (19 days 21 hours)
    assert later["exact_copy_count"] == 2.0
    assert later["exact_copy_departure_gap_hours"] == pytest.approx(19 * 24 + 21)
    assert later["exact_copy_days"] == 12.0  # C2's bill of March 18


def test_a_resent_bill_of_the_same_shipment(copies):
    again = copies.loc["AA0002005"]
    assert again["exact_copy_count"] == 1.0 and again["exact_copy_same_shipment"] == 1.0
    assert again["exact_copy_departure_gap_hours"] == 0.0 and again["exact_copy_days"] == 12.0
    assert again["exact_copy_accessorial_only"] == 0.0 and again["exact_copy_shipments_between"] == 0.0


def test_no_copy_means_zero_count_and_missing_details(copies):
    for invoice in ("AA0002001", "AA0002002", "AA0002003", "AA0002006", "AA0002008", "AA0002010"):
        row = copies.loc[invoice]
        assert row["exact_copy_count"] == 0.0, invoice
        assert np.isnan(row[["exact_copy_days", "exact_copy_same_shipment", "exact_copy_departure_gap_hours",
                             "exact_copy_shipments_between", "exact_copy_accessorial_only"]].to_numpy(float)).all(), invoice


def test_copies_never_see_later_invoices(copies):
    for cut in range(1, len(BILLS)):
        frame, lines = _frames(BILLS[:cut])
        alone = exact_copy_features(frame, lines).set_axis(frame["invoice_id"])
        pd.testing.assert_frame_equal(alone, copies.loc[alone.index])


def test_row_order_does_not_matter(copies):
    frame, lines = _frames()
    shuffled = frame.iloc[::-1].reset_index(drop=True)
    result = exact_copy_features(shuffled, lines.iloc[::-1]).set_axis(shuffled["invoice_id"])
    pd.testing.assert_frame_equal(result.loc[copies.index], copies)
