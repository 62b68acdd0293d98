"""Reference schemas, tariff arithmetic and the all-or-nothing file loaders."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.errors import InvalidInput
from features.reference import (
    MODE_CHARGE_CODES,
    AccessorialPrice,
    ChargeCode,
    Contract,
    FuelIndexPoint,
    FuelSurchargeRule,
    Invoice,
    ShipmentFacts,
)
from features.reference_io import (
    load_contracts,
    load_fuel_index,
    load_invoices,
    load_shipment_facts,
    validate_shipment_facts,
    write_table,
)
from features.reference_pricing import billable_periods, chargeable_weight_kg, fuel_surcharge_pct, round_cents
from features.schemas import Mode

UTC = timezone.utc
PRICES = [{"code": "security", "basis": "per_kg", "rate": 0.15, "minimum": 15.0},
          {"code": "storage", "basis": "per_day", "rate": 50.0, "free_hours": 48.0}]


def _fuel(kind: str = "jet") -> dict:
    return {"fuel_kind": kind, "base_price": 2.0, "step": 0.1, "pct_per_step": 1.5}


def _contract(**changes) -> dict:
    base = {"contract_id": "AA-JFK-LAX-1", "mode": "air", "carrier": "AA", "origin": "JFK", "destination": "LAX",
            "effective_from": date(2013, 1, 1), "effective_to": date(2013, 12, 31), "base_rate": 1.5,
            "minimum_charge": 100.0, "fuel": _fuel(), "accessorials": PRICES}
    return base | changes


def _invoice(**changes) -> dict:
    base = {"invoice_id": "AA0001", "carrier": "AA", "shipment_id": "S1", "invoice_date": "2013-03-08",
            "currency": "USD", "lines": [{"code": "linehaul", "amount": "300.00", "quantity": 200},
                                         {"code": "fuel", "amount": "40.50"}], "total": "340.50"}
    return base | changes


def _field_of(error: ValidationError) -> str:
    first = error.errors()[0]
    return ".".join(str(p) for p in first["loc"]) + " " + first["msg"]


# --- schemas ---------------------------------------------------------------------------------------------

def test_every_mode_has_linehaul_and_fuel_and_its_own_accessorials():
    for mode in Mode:
        assert {ChargeCode.LINEHAUL, ChargeCode.FUEL} <= MODE_CHARGE_CODES[mode]
    assert ChargeCode.STORAGE in MODE_CHARGE_CODES[Mode.AIR] - MODE_CHARGE_CODES[Mode.ROAD]
    assert ChargeCode.DETENTION in MODE_CHARGE_CODES[Mode.ROAD] - MODE_CHARGE_CODES[Mode.AIR]


def test_contract_accepts_valid_terms_and_names_bad_fields():
    assert Contract.model_validate(_contract()).fuel.fuel_kind == "jet"
    cases = {"effective_to": _contract(effective_to=date(2012, 12, 31)),
             "fuel_kind": _contract(fuel=_fuel("diesel")),
             "base_rate": _contract(base_rate=-1),
             "accessorials": _contract(accessorials=[{"code": "liftgate", "basis": "flat", "rate": 50}])}
    for field, payload in cases.items():
        with pytest.raises(ValidationError) as caught:
            Contract.model_validate(payload)
        assert field in str(caught.value)


def test_accessorial_price_refuses_free_time_on_flat_fees_and_core_codes():
    with pytest.raises(ValidationError, match="free_hours"):
        AccessorialPrice(code=ChargeCode.HANDLING, basis="flat", rate=30, free_hours=24)
    with pytest.raises(ValidationError, match="not an accessorial"):
        AccessorialPrice(code=ChargeCode.FUEL, basis="flat", rate=30)
    with pytest.raises(ValidationError, match="step"):
        FuelSurchargeRule(fuel_kind="jet", base_price=2.0, step=0, pct_per_step=1)


def test_fuel_index_weeks_start_on_monday():
    assert FuelIndexPoint(week_start=date(2013, 3, 4), fuel_kind="jet", price_per_gallon=2.95)
    with pytest.raises(ValidationError, match="week_start"):
        FuelIndexPoint(week_start=date(2013, 3, 5), fuel_kind="jet", price_per_gallon=2.95)


def _facts(**changes) -> ShipmentFacts:
    base = {"shipment_id": "S1", "mode": "air", "carrier": "AA", "origin": "JFK", "destination": "LAX",
            "distance_miles": 2475, "ship_date": date(2013, 3, 5),
            "scheduled_departure": datetime(2013, 3, 5, 12, tzinfo=UTC),
            "scheduled_arrival": datetime(2013, 3, 5, 18, tzinfo=UTC), "pieces": 2, "actual_weight_kg": 100.0,
            "length_cm": 100, "width_cm": 80, "height_cm": 60}
    return ShipmentFacts.model_validate(base | changes)


def test_air_chargeable_weight_is_the_greater_of_actual_and_dimensional_rounded_up_to_half_kg():
    assert _facts().chargeable_weight_kg == 160.0  # 2 x 100x80x60 cm / 6000 = 160 kg > 100 kg actual
    assert _facts(length_cm=10, width_cm=10, height_cm=10, actual_weight_kg=100.2).chargeable_weight_kg == 100.5
    assert _facts(mode="road", requested_services=()).chargeable_weight_kg == 100.0
    unknown = _facts(length_cm=None, width_cm=None, height_cm=None)
    assert unknown.chargeable_weight_kg == 100.0  # only the actual weight can be verified


def test_facts_refuse_partial_dimensions_and_services_of_another_mode():
    with pytest.raises(ValidationError, match="length_cm"):
        _facts(height_cm=None)
    with pytest.raises(ValidationError, match="requested_services"):
        _facts(requested_services=("liftgate",))


@pytest.mark.parametrize(("changes", "field"), [
    ({"lines": [{"code": "linehaul", "amount": "-5.00"}], "total": "-5.00"}, "lines.0.amount"),
    ({"currency": "EUR"}, "currency"),
    ({"total": "340.52"}, "total"),
    ({"lines": [{"code": "teleport", "amount": "340.50"}]}, "lines.0.code"),
    ({"lines": [{"code": "liftgate", "amount": "340.50"}]}, "lines"),
    ({"invoice_date": "2013-02-30"}, "invoice_date"),
    ({"lines": [{"code": "linehaul", "amount": "340.505"}], "total": "340.505"}, "lines.0.amount"),
])
def test_invoice_refuses_bad_input_naming_the_field(changes, field):
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(_invoice(**changes))
    assert _field_of(caught.value).startswith(field) or field in str(caught.value)


def test_invoice_tolerates_one_cent_of_rounding_and_names_itself_when_lines_disagree():
    assert str(Invoice.model_validate(_invoice(total="340.51")).total) == "340.51"
    with pytest.raises(ValidationError, match="AA0001"):
        Invoice.model_validate(_invoice(total="341.00"))


# --- tariff arithmetic ------------------------------------------------------------------------------------

def test_money_rounds_half_up_to_the_cent():
    assert round_cents(np.array([2.675, 0.125, 1.004, 10.0])).tolist() == [2.68, 0.13, 1.0, 10.0]


def test_fuel_surcharge_is_banded_and_floored_at_zero():
    pct = fuel_surcharge_pct(np.array([2.95, 2.10, 2.0999, 1.50]), base_price=2.0, step=0.10, pct_per_step=1.5)
    assert pct.tolist() == pytest.approx([13.5, 1.5, 0.0, 0.0])  # 9 bands, 1 band, just below, below base


def test_storage_is_billed_per_started_period_after_free_time():
    hours = np.array([30.0, 48.0, 49.0, 72.0, 73.0, np.nan])
    assert billable_periods(hours, free_hours=48.0, period_hours=24.0)[:5].tolist() == [0, 0, 1, 1, 2]
    assert np.isnan(billable_periods(hours, free_hours=48.0, period_hours=24.0)[5])


def test_vectorised_chargeable_weight_matches_the_schema():
    kg = chargeable_weight_kg(np.array(["air", "air", "road"]), actual_kg=np.array([100.0, 100.2, 100.0]),
                              pieces=np.array([2, 1, 2]), length_cm=np.array([100.0, 10, 100]),
                              width_cm=np.array([80.0, 10, 80]), height_cm=np.array([60.0, 10, 60]))
    assert kg.tolist() == [160.0, 100.5, 100.0]


# --- loaders ----------------------------------------------------------------------------------------------

def _contract_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "contract_id": ["AA-JFK-LAX-1", "AA-JFK-LAX-2"], "mode": "air", "carrier": "AA", "origin": "JFK",
        "destination": "LAX", "effective_from": pd.to_datetime(["2013-01-01", "2013-06-01"], utc=True),
        "effective_to": pd.to_datetime(["2013-05-31", "2013-12-31"], utc=True), "base_rate": [1.5, 1.6],
        "minimum_charge": 100.0, "fuel_kind": "jet", "fuel_base_price": 2.0, "fuel_step": 0.1,
        "fuel_pct_per_step": 1.5, "accessorials": json.dumps(PRICES)})


def _facts_frame() -> pd.DataFrame:
    stamp = pd.Timestamp("2013-03-05T12:00Z")
    return pd.DataFrame({
        "shipment_id": ["S1", "S2"], "mode": "air", "carrier": "AA", "origin": "JFK", "destination": "LAX",
        "distance_miles": 2475.0, "ship_date": stamp.normalize(), "scheduled_departure": stamp,
        "scheduled_arrival": stamp + pd.Timedelta(hours=6), "actual_departure": [stamp, pd.NaT],
        "actual_arrival": [stamp + pd.Timedelta(hours=6), pd.NaT], "cancelled": [False, True],
        "proof_of_delivery_at": [stamp + pd.Timedelta(hours=30), pd.NaT], "pieces": [1, 2],
        "actual_weight_kg": [200.0, 40.0], "length_cm": [100.0, np.nan], "width_cm": [100.0, np.nan],
        "height_cm": [100.0, np.nan], "consignee_pickup_at": [stamp + pd.Timedelta(hours=30), pd.NaT],
        "dwell_hours": [24.0, np.nan], "dangerous_goods": [False, True], "delivery_attempts": [0, 1],
        "requested_services": ["pickup;screening", ""]})


def _invoice_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = pd.DataFrame({
        "invoice_id": ["AA0001", "AA0002", "AA0003"], "carrier": "AA", "shipment_id": ["S1", "S2", "S1"],
        "mode": "air", "invoice_date": pd.to_datetime(["2013-03-08", "2013-03-09", "2013-03-20"], utc=True),
        "received_at": pd.to_datetime(["2013-03-08T09:00Z", "2013-03-09T09:00Z", pd.NaT], utc=True),
        "currency": "USD", "total": [340.50, 100.0, 50.0], "billed_weight_kg": [200.0, 40.0, np.nan]})
    lines = pd.DataFrame({"invoice_id": ["AA0001", "AA0001", "AA0002", "AA0003"], "line_no": [1, 2, 1, 1],
                          "code": ["linehaul", "fuel", "linehaul", "storage"],
                          "amount": [300.0, 40.5, 100.0, 50.0], "quantity": [200.0, np.nan, 40.0, 1.0]})
    return heads, lines


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reference_files_round_trip(tmp_path, suffix):
    contracts = load_contracts(write_table(_contract_frame(), tmp_path / f"c{suffix}"))
    pd.testing.assert_frame_equal(contracts, _contract_frame(), check_dtype=False)
    facts = load_shipment_facts(write_table(_facts_frame(), tmp_path / f"f{suffix}"))
    pd.testing.assert_frame_equal(facts, _facts_frame(), check_dtype=False)
    heads, lines = _invoice_frames()
    got = load_invoices(write_table(heads, tmp_path / f"i{suffix}"), write_table(lines, tmp_path / f"l{suffix}"))
    pd.testing.assert_frame_equal(got[0], heads, check_dtype=False)
    pd.testing.assert_frame_equal(got[1], lines, check_dtype=False)
    fuel = pd.DataFrame({"week_start": pd.to_datetime(["2013-03-04"], utc=True), "fuel_kind": "jet",
                         "price_per_gallon": [2.95]})
    pd.testing.assert_frame_equal(load_fuel_index(write_table(fuel, tmp_path / f"x{suffix}")), fuel)


def _refused(call, field: str, row: int | None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    assert caught.value.row == row
    assert f"'{field}'" in str(caught.value) or field in str(caught.value)
    return caught.value


def _write_invoices(tmp_path, heads: pd.DataFrame, lines: pd.DataFrame):
    heads_path = write_table(heads, tmp_path / "invoices.csv")
    lines_path = write_table(lines, tmp_path / "lines.csv")
    return lambda: load_invoices(heads_path, lines_path)


@pytest.mark.parametrize(("edit", "field", "row"), [
    (lambda h, l: (h.drop(columns="currency"), l), "currency", None),
    (lambda h, l: (h, l.assign(amount=[300.0, 40.5, 100.0, -50.0])), "amount", 4),
    (lambda h, l: (h.assign(currency=["USD", "EUR", "USD"]), l), "currency", 2),
    (lambda h, l: (h.assign(total=[340.50, 100.0, 50.02]), l), "total", 3),
    (lambda h, l: (h, l.assign(code=["linehaul", "fuel", "teleport", "storage"])), "code", 3),
    (lambda h, l: (h, l.assign(code=["linehaul", "fuel", "liftgate", "storage"])), "code", 3),
    (lambda h, l: (h.assign(invoice_date=["2013-03-08", "2013-03-09", "20/03/2013"]), l), "invoice_date", 3),
    (lambda h, l: (h.assign(invoice_id=["AA0001", "AA0001", "AA0003"]), l), "invoice_id", 2),
])
def test_bad_invoice_files_are_refused_whole_naming_column_and_row(tmp_path, edit, field, row):
    heads, lines = edit(*_invoice_frames())
    _refused(_write_invoices(tmp_path, heads, lines), field, row)


def test_bad_facts_and_fuel_files_name_column_and_row(tmp_path):
    facts = _facts_frame().astype({"scheduled_departure": str})
    facts.loc[1, "scheduled_departure"] = "yesterday"
    _refused(lambda: load_shipment_facts(write_table(facts, tmp_path / "f.csv")), "scheduled_departure", 2)
    naive = _facts_frame()
    naive["actual_arrival"] = ["2013-03-05 18:00:00", ""]
    _refused(lambda: load_shipment_facts(write_table(naive, tmp_path / "g.csv")), "actual_arrival", 1)
    fuel = pd.DataFrame({"week_start": ["2013-03-04", "2013-03-12"], "fuel_kind": "jet", "price_per_gallon": 2.9})
    _refused(lambda: load_fuel_index(write_table(fuel, tmp_path / "x.csv")), "week_start", 2)


def test_bad_contract_files_name_column_and_row(tmp_path):
    overlap = _contract_frame().assign(effective_from=pd.to_datetime(["2013-01-01", "2013-05-01"], utc=True))
    _refused(lambda: load_contracts(write_table(overlap, tmp_path / "a.csv")), "effective_from", 2)
    broken = _contract_frame().assign(accessorials=[json.dumps(PRICES), "[{\"code\": \"storage\"}]"])
    _refused(lambda: load_contracts(write_table(broken, tmp_path / "b.csv")), "accessorials", 2)
    missing = _contract_frame().drop(columns="fuel_step")
    _refused(lambda: load_contracts(write_table(missing, tmp_path / "c.csv")), "fuel_step", None)


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_fuel_index(tmp_path / "nope.csv")
    (tmp_path / "fuel.xlsx").write_text("x")
    with pytest.raises(InvalidInput, match="expected .csv or .parquet"):
        load_fuel_index(tmp_path / "fuel.xlsx")


def test_requested_services_are_kept_in_one_spelling():
    """``pickup; screening`` passes the code check token by token; it must also be stored as
    ``pickup;screening``, or re-rating (which splits on ';') would not see the screening it backs."""
    raw = _facts_frame().assign(requested_services=[" pickup ; screening;", ";"])
    assert validate_shipment_facts(raw)["requested_services"].tolist() == ["pickup;screening", ""]
    with pytest.raises(InvalidInput, match="requested_services"):
        validate_shipment_facts(_facts_frame().assign(requested_services=["pickup; liftgate", ""]))
