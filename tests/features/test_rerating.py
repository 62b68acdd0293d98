"""Re-rating with hand-computed examples, look-back features that never peek, and the rules baseline.

The tiny reference: AA JFK-LAX at $1.50/kg (min $100) until May 31, $1.60/kg from June 1; fuel table
base $2.00/gal, $0.10 bands, 1.5 points per band; jet fuel $2.95 (13.5 %) except the week of March 11
($3.07: 15 %) and from May 27 ($2.80: 12 %). Security $0.15/kg (min $15), handling $30, storage $50 a
day after 48 free hours, dangerous goods $100, re-delivery $75 per extra attempt, pickup $60.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.reference_pricing import billable_periods, fuel_surcharge_pct, linehaul_amount
from features.rerating import FEATURE_NAMES, audit_features
from features.rerating_carrier import DISPUTE_PRIOR_RATE, DISPUTE_PRIOR_WEIGHT
from features.rerating_rules import rules_only_audit
from features.rerating_similarity import number_similarity

PRICES = [{"code": "security", "basis": "per_kg", "rate": 0.15, "minimum": 15.0},
          {"code": "handling", "basis": "flat", "rate": 30.0},
          {"code": "storage", "basis": "per_day", "rate": 50.0, "free_hours": 48.0},
          {"code": "dangerous_goods", "basis": "flat", "rate": 100.0},
          {"code": "redelivery", "basis": "per_attempt", "rate": 75.0},
          {"code": "pickup", "basis": "flat", "rate": 60.0}]
UTC = "UTC"


def _contracts() -> pd.DataFrame:
    return pd.DataFrame({
        "contract_id": ["AA-JFK-LAX-A", "AA-JFK-LAX-B"], "mode": "air", "carrier": "AA", "origin": "JFK",
        "destination": "LAX", "effective_from": pd.to_datetime(["2013-01-01", "2013-06-01"], utc=True),
        "effective_to": pd.to_datetime(["2013-05-31", "2013-12-31"], utc=True), "base_rate": [1.50, 1.60],
        "minimum_charge": 100.0, "fuel_kind": "jet", "fuel_base_price": 2.0, "fuel_step": 0.1,
        "fuel_pct_per_step": 1.5, "accessorials": json.dumps(PRICES)})


def _fuel() -> pd.DataFrame:
    weeks = pd.date_range("2012-12-31", "2013-12-30", freq="W-MON", tz=UTC)
    price = np.where(weeks >= pd.Timestamp("2013-05-27", tz=UTC), 2.80, 2.95)
    price = np.where(weeks == pd.Timestamp("2013-03-11", tz=UTC), 3.07, price)
    return pd.DataFrame({"week_start": weeks, "fuel_kind": "jet", "price_per_gallon": price})


def _fact(sid: str, *, ship: str = "2013-03-05", kg: float = 200.0, dims=(100.0, 100.0, 100.0), pieces=1,
          dwell: float | None = 24.0, pod: str | None = "auto", delay_hours: float = 0.0, dg: bool = False,
          attempts: int = 0, services: str = "", dest: str = "LAX") -> dict:
    dep = pd.Timestamp(ship, tz=UTC) + pd.Timedelta(hours=12)
    arr = dep + pd.Timedelta(hours=6)
    actual = arr + pd.Timedelta(hours=delay_hours)
    released = actual + pd.Timedelta(hours=dwell or 10.0)
    return {"shipment_id": sid, "mode": "air", "carrier": "AA", "origin": "JFK", "destination": dest,
            "distance_miles": 2475.0, "ship_date": pd.Timestamp(ship, tz=UTC), "scheduled_departure": dep,
            "scheduled_arrival": arr, "actual_departure": dep, "actual_arrival": actual, "cancelled": False,
            "proof_of_delivery_at": released if pod == "auto" else pd.Timestamp(pod, tz=UTC) if pod else pd.NaT,
            "pieces": pieces, "actual_weight_kg": kg, "length_cm": dims[0], "width_cm": dims[1],
            "height_cm": dims[2], "consignee_pickup_at": released, "dwell_hours": dwell, "dangerous_goods": dg,
            "delivery_attempts": attempts, "requested_services": services}


FACTS = [
    _fact("S1", services="pickup"), _fact("S2", kg=40.0, dims=(20.0, 20.0, 20.0)), _fact("S3", ship="2013-03-12"),
    _fact("S4", kg=100.0, dims=(100.0, 80.0, 60.0), pieces=2), _fact("S5"), _fact("S6", ship="2013-06-05"),
    _fact("S7", ship="2013-05-30"), _fact("S8", dwell=60.0), _fact("S9", dwell=30.0),
    _fact("S9B", dwell=40.0, delay_hours=10.0), _fact("S10"), _fact("S11", dg=True), _fact("S12", attempts=2),
    _fact("S13", attempts=1), _fact("S14", pod="2013-03-07T15:00"), _fact("S15", dwell=None), _fact("S16"),
    *[_fact(f"P{k}", kg=kg, dims=(50.0, 50.0, 50.0), dest="SFO", ship=f"2013-03-0{k + 4}")
      for k, kg in enumerate([150, 200, 300, 250], 1)],
    _fact("N1", kg=300.0, dest="SEA"), _fact("N2", kg=300.0, dest="SEA"), _fact("N3", kg=300.0, dest="SEA"),
]
BASE = {"linehaul": 300.00, "fuel": 40.50, "security": 30.00, "handling": 30.00}
INVOICES = [  # (invoice_id, shipment_id, invoice date, received, lines, billed kg)
    ("AA0001234", "S1", "2013-03-08", "2013-03-08T09:00", BASE | {"pickup": 60.0}, 200.0),
    ("AA0001235", "S2", "2013-03-08", None, {"linehaul": 100.0, "fuel": 13.50, "security": 15.0}, 40.0),
    ("AA0001236", "S3", "2013-03-15", None, {"linehaul": 330.0, "fuel": 49.50}, 200.0),
    ("AA0001237", "S4", "2013-03-08", None, {"linehaul": 240.0, "fuel": 32.40}, 160.0),
    ("AA0001238", "S5", "2013-03-08", None, {"linehaul": 375.0, "fuel": 50.63, "security": 37.50}, 250.0),
    ("AA0001239", "S6", "2013-06-08", None, {"linehaul": 320.0, "fuel": 38.40}, 200.0),
    ("AA0001240", "S7", "2013-06-10", None, {"linehaul": 320.0, "fuel": 38.40}, 200.0),
    ("AA0001241", "S8", "2013-03-08", None, BASE, 200.0),
    ("AA0001242", "S8", "2013-03-20", None, {"storage": 50.0}, None),
    ("AA0001243", "S9", "2013-03-09", None, BASE | {"storage": 50.0}, 200.0),
    ("AA0001244", "S9B", "2013-03-09", None, BASE | {"storage": 50.0}, 200.0),
    ("AA0001245", "S10", "2013-03-09", None, BASE | {"dangerous_goods": 100.0}, 200.0),
    ("AA0001246", "S11", "2013-03-09", None, BASE | {"dangerous_goods": 100.0}, 200.0),
    ("AA0001247", "S12", "2013-03-09", None, BASE | {"redelivery": 75.0}, 200.0),
    ("AA0001248", "S13", "2013-03-09", None, BASE | {"redelivery": 75.0}, 200.0),
    ("AA0001249", "S14", "2013-03-06", None, BASE, 200.0),
    ("AA0001250", "S15", "2013-03-09", None, BASE | {"storage": 50.0}, 200.0),
    ("AA0001251", "S16", "2013-03-09", None, {"linehaul": 300.0, "fuel": 60.0}, 200.0),
    ("AA0001252", "NOPE", "2013-03-09", None, BASE, 200.0),
    ("AA0001234-A", "S1", "2013-03-20", "2013-03-20T09:00", BASE | {"pickup": 60.0}, 200.0),
    *[(f"AA000130{k}", f"P{k}", f"2013-03-1{k}", None, {"linehaul": 2.0 * kg}, float(kg))
      for k, kg in enumerate([150, 200, 300, 250], 1)],
    ("AA0001401", "N1", "2013-03-10", None, {"linehaul": 500.0}, 300.0),
    ("AA0001402", "N2", "2013-03-20", None, {"linehaul": 505.0}, 300.0),
    ("AA0001403", "N3", "2013-04-29", None, {"linehaul": 505.0}, 300.0),
]


def _frames(rows=INVOICES) -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = pd.DataFrame({
        "invoice_id": [r[0] for r in rows], "carrier": "AA", "shipment_id": [r[1] for r in rows], "mode": "air",
        "invoice_date": pd.to_datetime([r[2] for r in rows], utc=True),
        "received_at": pd.to_datetime([r[3] or f"{r[2]}T12:00" for r in rows], utc=True), "currency": "USD",
        "total": [round(sum(r[4].values()), 2) for r in rows], "billed_weight_kg": [r[5] for r in rows]})
    lines = pd.DataFrame([{"invoice_id": r[0], "line_no": k, "code": code, "amount": amount, "quantity": np.nan}
                          for r in rows for k, (code, amount) in enumerate(r[4].items(), 1)])
    lines.loc[lines["code"] == "storage", "quantity"] = 1.0
    lines.loc[lines["code"] == "redelivery", "quantity"] = 1.0
    return heads, lines


def _features(rows=INVOICES, outcomes=None) -> pd.DataFrame:
    heads, lines = _frames(rows)
    return audit_features(heads, lines, facts=pd.DataFrame(FACTS), contracts=_contracts(), fuel_index=_fuel(),
                          outcomes=outcomes)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return _features()


def test_output_is_one_numeric_row_per_invoice_with_the_documented_columns(features):
    assert list(features.columns) == list(FEATURE_NAMES)
    assert features.index.name == "invoice_id" and features.index.is_unique
    assert len(features) == len(INVOICES)
    assert all(dtype == np.float64 for dtype in features.dtypes)


def test_a_correct_invoice_rerates_to_zero(features):
    row = features.loc["AA0001234"]
    assert (row["linehaul_expected"], row["fuel_expected"], row["accessorial_expected"]) == (300.0, 40.5, 120.0)
    assert row["total_delta"] == pytest.approx(0.0) and row["fuel_pct_expected"] == pytest.approx(13.5)


def test_air_linehaul_is_rate_times_chargeable_weight_with_a_minimum(features):
    small = features.loc["AA0001235"]  # 40 kg x $1.50 = $60 < $100 minimum; security min $15
    assert small["linehaul_expected"] == 100.0 and small["linehaul_at_minimum"] == 1.0
    assert small["security_delta"] == pytest.approx(0.0)
    dim = features.loc["AA0001237"]  # 2 x 100x80x60 cm = 160 kg dimensional > 100 kg actual: legitimate
    assert dim["chargeable_weight_kg"] == 160.0 and dim["linehaul_delta"] == pytest.approx(0.0)
    assert dim["weight_ratio_billed_actual"] == pytest.approx(1.6)


def test_rate_overcharge_shows_in_linehaul_and_follows_into_fuel_but_not_the_fuel_percentage(features):
    row = features.loc["AA0001236"]  # week of March 11: $3.07 -> 10 bands -> 15 %
    assert row["linehaul_delta"] == pytest.approx(30.0) and row["linehaul_delta_share"] == pytest.approx(0.1)
    assert row["fuel_expected"] == pytest.approx(45.0) and row["fuel_delta"] == pytest.approx(4.5)
    assert row["fuel_pct_delta"] == pytest.approx(0.0, abs=1e-9)


def test_weight_overbilling_is_separated_from_the_rate(features):
    row = features.loc["AA0001238"]
    assert row["weight_ratio_billed_chargeable"] == pytest.approx(1.25)
    assert row["linehaul_delta"] == pytest.approx(75.0) and row["linehaul_delta_at_billed_weight"] == 0.0


def test_the_contract_in_force_on_the_shipment_date_applies(features):
    after = features.loc["AA0001239"]  # shipped June 5 under the amendment ($1.60, fuel 12 %)
    assert after["linehaul_delta"] == pytest.approx(0.0) and after["contract_amended"] == 1.0
    early = features.loc["AA0001240"]  # shipped May 30, invoiced June 10 at the new rate
    assert early["linehaul_expected"] == 300.0 and early["linehaul_delta"] == pytest.approx(20.0)


def test_storage_is_due_only_after_free_time(features):
    late = features.loc["AA0001242"]  # 60 h dwell, 48 h free: one day, billed on a separate invoice
    assert late["storage_delta"] == pytest.approx(0.0) and late["storage_days_expected"] == 1.0
    assert late["shipment_billed_to_expected"] == pytest.approx(1.0)
    inside = features.loc["AA0001243"]  # 30 h dwell: nothing due
    assert inside["storage_delta"] == 50.0 and inside["accessorial_unbacked_count"] == 1.0
    delayed = features.loc["AA0001244"]  # 40 h after a 10 h late arrival: 50 h only if counted from schedule
    assert delayed["storage_days_expected"] == 0.0 and delayed["storage_days_from_schedule"] == 1.0


def test_accessorials_need_evidence(features):
    assert features.loc["AA0001245", "dangerous_goods_delta"] == 100.0  # ordinary cargo
    assert features.loc["AA0001246", "dangerous_goods_delta"] == 0.0
    assert features.loc["AA0001247", "redelivery_delta"] == 0.0  # two attempts: one re-delivery
    assert features.loc["AA0001248", "redelivery_delta"] == 75.0
    unverifiable = features.loc["AA0001250"]  # storage billed but no dwell scan: cannot be disproved
    assert np.isnan(unverifiable["storage_delta"]) and unverifiable["accessorial_unverifiable_count"] == 1.0
    assert unverifiable["accessorial_excess"] == 0.0


def test_proof_of_delivery_is_judged_at_the_invoice_date(features):
    early = features.loc["AA0001249"]
    assert early["pod_present_at_invoice"] == 0.0 and early["invoice_days_after_pod"] == -1.0
    assert features.loc["AA0001234", "pod_present_at_invoice"] == 1.0
    unknown = features.loc["AA0001252"]
    assert unknown["facts_missing"] == 1.0 and np.isnan(unknown["total_expected"])


def test_spot_rates_are_estimated_from_earlier_invoices_of_the_lane(features):
    assert np.isnan(features.loc["AA0001303", "linehaul_expected"])  # only two earlier spot invoices
    fourth = features.loc["AA0001304"]
    assert fourth["is_spot"] == 1.0 and fourth["spot_history_count"] == 3.0
    assert fourth["rate_expected"] == pytest.approx(2.0) and fourth["linehaul_delta"] == pytest.approx(0.0)
    assert fourth["fuel_pct_expected"] == pytest.approx(13.5)  # carrier's standard fuel table


def test_duplicate_features_see_the_earlier_bill_of_the_same_shipment(features):
    again = features.loc["AA0001234-A"]
    assert again["prior_same_shipment_invoices"] == 1.0 and again["prior_same_shipment_code_overlap"] == 1.0
    assert again["prior_same_shipment_days"] == 12.0 and again["shipment_billed_to_expected"] == pytest.approx(2.0)
    assert again["prior_same_shipment_number_similarity"] == pytest.approx(0.9)
    assert again["exact_copy_count"] == 1.0 and again["exact_copy_same_shipment"] == 1.0
    first = features.loc["AA0001234"]
    assert first["prior_same_shipment_invoices"] == 0.0
    assert np.isnan(first["prior_same_shipment_number_similarity"])
    split = features.loc["AA0001242"]
    assert split["prior_same_shipment_invoices"] == 1.0 and split["prior_same_shipment_code_overlap"] == 0.0


def test_near_equal_amounts_on_the_lane_within_thirty_days(features):
    near = features.loc["AA0001402"]
    assert near["near_amount_match"] == 1.0 and near["near_amount_days"] == 10.0
    assert near["near_amount_diff_share"] == pytest.approx(5 / 505) and near["near_amount_same_shipment"] == 0.0
    assert features.loc["AA0001403", "near_amount_match"] == 0.0  # 40 days later


def test_look_back_features_never_see_later_invoices(features):
    cut = pd.Timestamp("2013-03-15", tz=UTC)
    earlier = [r for r in INVOICES if pd.Timestamp(r[3] or f"{r[2]}T12:00", tz=UTC) < cut]
    alone = _features(earlier)
    pd.testing.assert_frame_equal(alone, features.loc[alone.index])


def test_row_order_does_not_matter(features):
    shuffled = _features(list(reversed(INVOICES)))
    pd.testing.assert_frame_equal(shuffled.loc[features.index], features)


def test_carrier_dispute_rate_uses_only_verdicts_known_before_the_invoice():
    rows = [("AA0009001", "N1", "2013-03-01", None, {"linehaul": 500.0}, 300.0),
            ("AA0009002", "N2", "2013-03-06", None, {"linehaul": 900.0}, 300.0),
            ("AA0009003", "N3", "2013-03-21", None, {"linehaul": 700.0}, 300.0)]
    outcomes = pd.Series({"AA0009001": True, "AA0009002": False, "AA0009003": True})
    rate = _features(rows, outcomes)["carrier_prior_dispute_rate"]
    prior, weight = DISPUTE_PRIOR_RATE, DISPUTE_PRIOR_WEIGHT
    assert rate.tolist() == pytest.approx([prior, prior, (1 + weight * prior) / (2 + weight)])
    assert _features(rows)["carrier_prior_dispute_rate"].isna().all()


def test_invoice_number_similarity_ignores_punctuation_and_counts_edits():
    left = pd.Series(["UA0412345", "UA0412345", "ua 0412345", "UA0412345", None])
    right = pd.Series(["UA-0412345", "UA0412354", "UA0412345", "UA0412346", "UA1"])
    got = number_similarity(left, right)
    assert got[:4].tolist() == pytest.approx([1.0, 1 - 2 / 9, 1.0, 1 - 1 / 9]) and np.isnan(got[4])


def test_rules_baseline_names_the_obvious_cases(features):
    verdict = rules_only_audit(features)
    expected = {"AA0001234": "clean", "AA0001237": "clean", "AA0001239": "clean", "AA0001242": "clean",
                "AA0001236": "rate_overcharge", "AA0001240": "rate_overcharge", "AA0001238": "weight_overbilled",
                "AA0001243": "unbacked_accessorial", "AA0001245": "unbacked_accessorial",
                "AA0001249": "billed_before_delivery", "AA0001251": "fuel_surcharge_error",
                "AA0001234-A": "duplicate", "AA0001250": "clean"}
    assert {k: verdict[k] for k in expected} == expected
    assert verdict.index.equals(features.index)


@given(st.floats(1.0, 6.0), st.floats(1.0, 6.0))
def test_fuel_surcharge_never_falls_when_fuel_rises(low, high):
    low, high = sorted((low, high))
    pct = fuel_surcharge_pct(np.array([low, high]), base_price=2.0, step=0.05, pct_per_step=0.75)
    assert 0.0 <= pct[0] <= pct[1]


@given(st.floats(0.01, 20.0), st.floats(0.1, 50_000.0), st.floats(0.0, 500.0))
def test_linehaul_is_at_least_the_minimum_and_grows_with_weight(rate, kg, minimum):
    amounts = linehaul_amount(rate=rate, quantity=np.array([kg, kg * 1.5]), minimum=minimum)
    assert amounts[0] >= round(minimum, 2) - 0.005 and amounts[1] >= amounts[0]


@given(st.floats(0.0, 500.0), st.sampled_from([0.0, 24.0, 48.0]))
def test_storage_days_grow_with_dwell_and_never_charge_free_time(dwell, free):
    days = billable_periods(np.array([dwell, dwell + 24.0]), free_hours=free, period_hours=24.0)
    assert 0 <= days[1] - days[0] <= 1
    assert days[0] == 0 if dwell <= free else True
    assert days[0] >= 1 if dwell >= free + 0.001 else True


def test_an_invoice_alone_without_terms_is_rerated_without_pandas_downcasting():
    """An invoice of an unknown shipment, alone: the service reads the contracts of its shipments' lanes
    only, so it has none (an empty contract frame, no terms to spread to the row). pandas 2 downcast the
    empty object columns silently, with a FutureWarning each time (31 printed in one in-process run of
    ten single invoices and a batch of five); pyproject makes that warning an error here."""
    heads, lines = _frames([row for row in INVOICES if row[1] == "NOPE"])
    features = audit_features(heads, lines, facts=pd.DataFrame(FACTS), contracts=_contracts().iloc[0:0],
                              fuel_index=_fuel())
    assert list(features.index) == ["AA0001252"]
    assert features.loc["AA0001252"].notna().any()
    assert np.isnan(features.loc["AA0001252", "linehaul_expected"])


def test_a_contract_pricing_an_accessorial_twice_is_refused_not_guessed():
    from features.rerating_terms import expected_accessorials

    frame = pd.DataFrame([_fact("S1", services="pickup")]).assign(
        terms_contract_id="AA-JFK-LAX-A", chargeable_weight_kg=200.0)
    twice = _contracts().assign(accessorials=json.dumps([*PRICES, {"code": "pickup", "basis": "flat",
                                                                   "rate": 90.0}]))
    assert expected_accessorials(frame, _contracts())["amount"].loc[0, "pickup"] == 60.0
    with pytest.raises(ValueError, match="prices pickup more than once"):
        expected_accessorials(frame, twice)
