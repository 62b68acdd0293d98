"""The pieces of re-rating: billed amounts per code, facts and terms per invoice, expected amounts, and
evidence features (proof of delivery, dwell against free time, weights, dangerous goods, attempts).

Conventions: money in USD, ``*_delta`` = billed - expected, ``*_share`` = delta / expected; a code the
facts cannot verify (e.g. storage without a dwell scan) is expected at its billed amount and counted
in ``accessorial_unverifiable_count``: an auditor cannot dispute what it cannot disprove.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.reference import ChargeCode
from features.reference_pricing import (
    billable_periods,
    chargeable_weight_kg,
    dimensional_weight_kg,
    fuel_amount,
    fuel_surcharge_pct,
    linehaul_amount,
)
from features.rerating_terms import (
    ACCESSORIALS,
    LANE_KEYS,
    contract_in_force,
    expected_accessorials,
    standard_terms,
    week_price,
)
from features.schemas import Mode

ACCESSORIAL_NAMES: tuple[str, ...] = tuple(c.value for c in ACCESSORIALS)
ALL_CODES = [c.value for c in ChargeCode]
_DAY, _HOUR = pd.Timedelta(days=1), pd.Timedelta(hours=1)
_STORAGE, _REDELIVERY = ChargeCode.STORAGE.value, ChargeCode.REDELIVERY.value


def billed_components(lines: pd.DataFrame) -> pd.DataFrame:
    """Per invoice_id: ``billed_<code>`` dollars, storage/detention and re-delivery quantities, line count."""
    rows, invoice_ids = pd.factorize(lines["invoice_id"])
    cols = pd.Index(ALL_CODES).get_indexer(lines["code"])
    matrix = np.zeros((len(invoice_ids), len(ALL_CODES)))
    np.add.at(matrix, (rows, cols), lines["amount"].to_numpy(float))
    out = pd.DataFrame(matrix, index=pd.Index(invoice_ids, name="invoice_id"),
                       columns=[f"billed_{c}" for c in ALL_CODES])
    timed = lines["code"].isin([_STORAGE, ChargeCode.DETENTION.value])
    redelivery = lines["code"] == _REDELIVERY
    for name, mask in (("storage_days_billed", timed), ("redelivery_units_billed", redelivery)):
        qty = lines[mask].groupby("invoice_id")["quantity"].sum(min_count=1)  # NaN: billed, no quantity
        out[name] = np.where(out.index.isin(qty.index), qty.reindex(out.index), 0.0)
    out["line_count"] = lines.groupby("invoice_id").size().reindex(out.index).astype(float)
    return out


def facts_context(frame: pd.DataFrame, *, facts: pd.DataFrame, contracts: pd.DataFrame,
                  fuel_index: pd.DataFrame) -> pd.DataFrame:
    """Join each invoice to its shipment's facts, the terms in force and the fuel week's surcharge."""
    joined = frame.merge(facts.rename(columns={"carrier": "fact_carrier", "mode": "fact_mode"}),
                         on="shipment_id", how="left", validate="many_to_one")
    joined["facts_missing"] = joined["ship_date"].isna()
    joined["carrier_mismatch"] = ~joined["facts_missing"] & (joined["fact_carrier"] != joined["carrier"])
    joined["chargeable_weight_kg"] = chargeable_weight_kg(
        joined["mode"].to_numpy(), actual_kg=joined["actual_weight_kg"], pieces=joined["pieces"],
        length_cm=joined["length_cm"], width_cm=joined["width_cm"], height_cm=joined["height_cm"])
    joined["dimensional_weight_kg"] = dimensional_weight_kg(
        pieces=joined["pieces"], length_cm=joined["length_cm"], width_cm=joined["width_cm"],
        height_cm=joined["height_cm"])
    terms = contract_in_force(joined, contracts)
    standard = joined[["mode", "carrier"]].merge(standard_terms(contracts), on=["mode", "carrier"], how="left")
    joined["is_spot"] = terms["contract_id"].isna().to_numpy() & ~joined["facts_missing"]
    # the contract in force, else the carrier's standard one (both frames are row-aligned with joined); in
    # numpy, as object: Series.fillna downcast an all-missing column to float with a FutureWarning
    in_force, fallback = terms["contract_id"].to_numpy(object), standard["contract_id"].to_numpy(object)
    joined["terms_contract_id"] = np.where(pd.isna(in_force), fallback, in_force)
    for column in ("fuel_base_price", "fuel_step", "fuel_pct_per_step"):
        joined[column] = terms[column].fillna(standard[column]).to_numpy(float)
    for column in ("contract_id", "effective_from", "base_rate", "minimum_charge"):
        joined[column] = terms[column]
    first = contracts.groupby(LANE_KEYS)["effective_from"].min().rename("lane_first_effective")
    joined = joined.merge(first.reset_index(), on=LANE_KEYS, how="left")
    joined["fuel_pct_expected"] = fuel_surcharge_pct(
        week_price(joined, fuel_index), base_price=joined["fuel_base_price"], step=joined["fuel_step"],
        pct_per_step=joined["fuel_pct_per_step"])
    joined["linehaul_billed"] = joined["billed_linehaul"]
    return joined


def _expected_linehaul(frame: pd.DataFrame) -> np.ndarray:
    """Full linehaul due: contract rate, or the spot estimate; NaN when neither is known."""
    spot = frame["is_spot"].to_numpy(bool)
    rate = np.where(spot, frame["spot_rate_estimate"], frame["base_rate"]).astype(float)
    minimum = np.where(spot, frame["spot_minimum_estimate"].fillna(0.0), frame["minimum_charge"]).astype(float)
    quantity = np.where(frame["mode"] == Mode.AIR.value, frame["chargeable_weight_kg"], frame["distance_miles"])
    frame["rate_expected"] = rate
    frame["minimum_expected"] = minimum
    return np.where(np.isnan(rate), np.nan, linehaul_amount(rate=np.nan_to_num(rate), quantity=quantity,
                                                            minimum=np.nan_to_num(minimum)))


def expected_components(frame: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    """Expected dollars per component for the codes billed on each invoice, plus shipment-level totals."""
    linehaul = _expected_linehaul(frame)
    fuel = fuel_amount(linehaul, frame["fuel_pct_expected"])
    acc = expected_accessorials(frame, contracts)
    billed = frame[[f"billed_{c}" for c in ACCESSORIAL_NAMES]].to_numpy(float)
    due = acc["amount"][list(ACCESSORIAL_NAMES)].to_numpy(float)
    on_invoice = billed > 0
    unknown = on_invoice & np.isnan(due)
    expected = np.where(on_invoice, np.where(unknown, billed, due), 0.0)
    out = pd.DataFrame(index=frame.index)
    out["linehaul_expected"] = np.where(frame["billed_linehaul"] > 0, linehaul, 0.0)
    out["fuel_expected"] = np.where(frame["billed_fuel"] > 0, fuel, 0.0)
    out["accessorial_billed"] = billed.sum(axis=1)
    out["accessorial_expected"] = expected.sum(axis=1)
    out["linehaul_billed"], out["fuel_billed"] = frame["billed_linehaul"], frame["billed_fuel"]
    out["total_billed"] = frame["billed_linehaul"] + frame["billed_fuel"] + out["accessorial_billed"]
    out["total_expected"] = out["linehaul_expected"] + out["fuel_expected"] + out["accessorial_expected"]
    for k, code in enumerate(ACCESSORIAL_NAMES):
        out[f"{code}_delta"] = np.where(unknown[:, k], np.nan, billed[:, k] - expected[:, k])
    out["accessorial_excess"] = np.clip(billed - expected, 0.0, None).sum(axis=1)
    out["accessorial_unbacked_count"] = (on_invoice & (due == 0)).sum(axis=1).astype(float)
    out["accessorial_unverifiable_count"] = unknown.sum(axis=1).astype(float)
    out["shipment_expected_total"] = linehaul + fuel + np.nansum(due, axis=1)
    out["storage_days_expected"] = acc["units"][_STORAGE].where(frame["mode"] == Mode.AIR.value,
                                                                acc["units"][ChargeCode.DETENTION.value])
    out["free_hours"] = acc["free_hours"][_STORAGE].where(frame["mode"] == Mode.AIR.value,
                                                          acc["free_hours"][ChargeCode.DETENTION.value])
    frame = frame.drop(columns=[c for c in out.columns if c in frame.columns])
    return pd.concat([frame, out], axis=1)


def _linehaul_at(frame: pd.DataFrame, billed_kg: pd.Series) -> np.ndarray:
    """Linehaul due at the weight the carrier billed: isolates a rate error from a weight error."""
    quantity = np.where(frame["mode"] == Mode.AIR.value, billed_kg, frame["distance_miles"])
    due = linehaul_amount(rate=frame["rate_expected"].fillna(0.0), quantity=quantity,
                          minimum=frame["minimum_expected"].fillna(0.0))
    return np.where(frame["rate_expected"].isna(), np.nan, due)


def evidence_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Proof of delivery, timing, dwell, weights and service evidence per invoice."""
    invoice_day_end = frame["invoice_date"] + _DAY
    pod = frame["proof_of_delivery_at"]
    dwell = frame["dwell_hours"].astype(float)
    delay = (frame["actual_arrival"] - frame["scheduled_arrival"]) / _HOUR
    billed_kg = frame["billed_weight_kg"].astype(float)
    period = np.where(frame["mode"] == Mode.AIR.value, 24.0, 1.0)
    fuel_pct = 100.0 * frame["fuel_billed"] / frame["linehaul_billed"].where(frame["linehaul_billed"] > 0)
    arrival, rate = frame["actual_arrival"], frame["rate_expected"]
    return pd.DataFrame({
        "fuel_pct_billed": fuel_pct,
        "fuel_pct_delta": fuel_pct - frame["fuel_pct_expected"],
        "linehaul_delta_at_billed_weight": frame["linehaul_billed"] - np.where(
            frame["linehaul_billed"] > 0, _linehaul_at(frame, billed_kg), np.nan),
        "implied_rate_ratio": frame["linehaul_billed"] / billed_kg.where(billed_kg > 0) / rate,
        "linehaul_at_minimum": (frame["minimum_expected"] >= rate * frame["chargeable_weight_kg"])
        .where(rate.notna()),
        "contract_days_in_force": (frame["ship_date"] - frame["effective_from"]) / _DAY,
        "contract_amended": (frame["effective_from"] > frame["lane_first_effective"]).where(
            frame["effective_from"].notna()),
        "weight_ratio_billed_chargeable": billed_kg / frame["chargeable_weight_kg"],
        "weight_ratio_billed_actual": billed_kg / frame["actual_weight_kg"],
        "weight_excess_kg": billed_kg - frame["chargeable_weight_kg"],
        "dims_missing": frame["length_cm"].isna() & ~frame["facts_missing"],
        "pod_missing": pod.isna(),
        "pod_present_at_invoice": (pod < invoice_day_end).fillna(False).where(~frame["facts_missing"]),
        "invoice_days_after_pod": (frame["invoice_date"] - pod.dt.normalize()) / _DAY,
        "invoice_days_after_arrival": (frame["invoice_date"] - frame["actual_arrival"].dt.normalize()) / _DAY,
        "invoice_days_after_ship": (frame["invoice_date"] - frame["ship_date"]) / _DAY,
        "invoice_before_arrival": (invoice_day_end <= arrival).where(arrival.notna()),
        "arrival_delay_hours": delay,
        "dwell_missing": frame["dwell_hours"].isna(),
        "dwell_over_free_hours": dwell - frame["free_hours"],
        "storage_days_from_schedule": np.where(np.isnan(dwell), np.nan, billable_periods(
            dwell + delay.clip(lower=0).fillna(0.0), free_hours=frame["free_hours"], period_hours=period)),
        "dangerous_goods_fee_billed": (frame["billed_dangerous_goods"] + frame["billed_hazmat"]) > 0,
        "services_requested_count": frame["requested_services"].fillna("").str.count(r"[^;]+"),
        "has_linehaul": frame["linehaul_billed"] > 0,
    }, index=frame.index).astype(float)


__all__ = ["ACCESSORIAL_NAMES", "billed_components", "evidence_features", "expected_components",
           "facts_context"]
