"""How carriers in the invoice world bill: the terms in force per shipment, billing parameters, prices.

A shipment's bill is described by *parameters* (weight billed, rate, minimum, fuel week price and table,
units of each accessorial). A clean bill takes them from the contract and what truly happened; a
discrepancy is a change to some parameters. Pricing is one vectorised pass through the same tariff
arithmetic re-rating uses, so "what was billed" and "what was due" differ only by the parameters.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from features.invoice_world_reference import lane_rate_per_kg
from features.reference import ChargeCode
from features.reference_pricing import (
    accessorial_amount,
    billable_periods,
    fuel_amount,
    fuel_surcharge_pct,
    linehaul_amount,
    round_up_weight,
)

ACCESSORIAL_CODES = (ChargeCode.SECURITY, ChargeCode.SCREENING, ChargeCode.HANDLING, ChargeCode.STORAGE,
                     ChargeCode.DANGEROUS_GOODS, ChargeCode.PICKUP, ChargeCode.DELIVERY,
                     ChargeCode.REDELIVERY, ChargeCode.REBOOKING)
BILL_CODES = (ChargeCode.LINEHAUL, ChargeCode.FUEL, *ACCESSORIAL_CODES)
SCALE_VARIANCE_SHARE = 0.15
"""Shipments the carrier re-weighed with a result within 1.5 % of the shipper's weight (legitimate)."""
WHOLE_KG_CARRIERS = frozenset({"B6", "WN"})
"""Carriers rounding chargeable weight up to a whole kg instead of half a kg (sub-tolerance, clean)."""
UNROUNDED_FUEL_CARRIERS = frozenset({"DL", "US", "AA"})
"""Carriers computing fuel on the unrounded linehaul: a one-cent drift, clean."""
SPOT_PREMIUM = (1.15, 1.35)
PER_KG_CODES = frozenset({ChargeCode.SECURITY})


def price_table(terms: pd.DataFrame) -> pd.DataFrame:
    """Each carrier's accessorial prices, one row per carrier: ``<code>_rate`` and ``<code>_minimum``.

    Every carrier prices each code on the same basis (security per kg, storage per day, re-delivery per
    extra attempt, the rest flat), which ``price`` relies on.
    """
    rows = [{"carrier": c, **p} for c, text in zip(terms["carrier"], terms["accessorials"], strict=True)
            for p in json.loads(text)]
    long = pd.DataFrame(rows).fillna({"minimum": 0.0, "free_hours": 0.0})
    wide = long.pivot(index="carrier", columns="code", values=["rate", "minimum", "free_hours"])
    wide.columns = [f"{code}_{field}" for field, code in wide.columns]
    return wide


def week_price_of(ship_date: pd.Series, fuel: pd.DataFrame) -> np.ndarray:
    """Index price of the week (Monday start) containing each ship date."""
    week = ship_date - pd.to_timedelta(ship_date.dt.weekday, unit="D")
    return week.map(fuel.set_index("week_start")["price_per_gallon"]).to_numpy(float)


def shipment_terms(ships: pd.DataFrame, lanes: pd.DataFrame, *, fuel: pd.DataFrame,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Per shipment: spot or contract, the rate in force on the ship date, fuel table, storage free time."""
    keys = ["carrier", "origin", "destination"]
    lane = ships[[*keys, "ship_date", "distance_miles"]].merge(lanes, on=keys, how="left",
                                                              validate="many_to_one", suffixes=("", "_lane"))
    amended = (lane["ship_date"] >= lane["amended_from"]).fillna(False).to_numpy()
    spot = lane["spot"].to_numpy(bool)
    quote = np.round(lane_rate_per_kg(lane["distance_miles"], lane["rate_factor"])
                     * rng.uniform(*SPOT_PREMIUM, len(lane)), 3)
    storage = price_table(lanes.drop_duplicates("carrier"))[f"{ChargeCode.STORAGE.value}_free_hours"]
    free = lane["carrier"].map(storage).to_numpy(float)
    return pd.DataFrame({
        "spot": spot, "amended": amended,
        "rate": np.where(spot, quote, np.where(amended, lane["amended_rate"], lane["base_rate"])),
        "contract_rate": lane["base_rate"].to_numpy(), "amended_rate": lane["amended_rate"].to_numpy(),
        "amended_from": lane["amended_from"],
        "minimum": np.where(spot, lane["tariff_minimum"], lane["contract_minimum"]),
        "tariff_minimum": lane["tariff_minimum"].to_numpy(),
        "fuel_price": week_price_of(ships["ship_date"], fuel), "fuel_base": lane["fuel_base_price"].to_numpy(),
        "fuel_step": lane["fuel_step"].to_numpy(),
        "fuel_pps": np.where(amended, lane["amended_pct_per_step"], lane["fuel_pct_per_step"]),
        "free_hours": np.where(amended & lane["amended_free_hours"].notna(), lane["amended_free_hours"], free),
    }, index=ships.index)


def clean_params(ships: pd.DataFrame, cargo: pd.DataFrame, *, timeline: pd.DataFrame, terms: pd.DataFrame,
                 rng: np.random.Generator) -> pd.DataFrame:
    """What an honest carrier bills, including its legitimate quirks (re-weighs, rounding policy)."""
    n = len(ships)
    carrier = ships["carrier"]
    reweigh = np.where(rng.random(n) < SCALE_VARIANCE_SHARE, rng.uniform(0.985, 1.015, n), 1.0)
    dim = cargo["pieces"] * cargo["length_cm"] * cargo["width_cm"] * cargo["height_cm"] / 6000.0
    increment = np.where(carrier.isin(WHOLE_KG_CARRIERS), 1.0, 0.5)
    kg = round_up_weight(np.fmax(cargo["actual_weight_kg"] * reweigh, dim), increment)
    params = pd.DataFrame({
        "kg": kg, "rate": terms["rate"], "minimum": terms["minimum"], "fuel_price": terms["fuel_price"],
        "fuel_base": terms["fuel_base"], "fuel_step": terms["fuel_step"], "fuel_pps": terms["fuel_pps"],
        "fuel_on_accessorials": False, "unrounded_fuel": carrier.isin(UNROUNDED_FUEL_CARRIERS).to_numpy(),
        "carrier": carrier}, index=ships.index)
    units = {
        ChargeCode.SECURITY: 1.0, ChargeCode.HANDLING: 1.0,
        ChargeCode.SCREENING: cargo["wants_screening"].astype(float),
        ChargeCode.PICKUP: cargo["wants_pickup"].astype(float),
        ChargeCode.DELIVERY: cargo["wants_delivery"].astype(float),
        ChargeCode.REBOOKING: cargo["wants_rebooking"].astype(float),
        ChargeCode.DANGEROUS_GOODS: cargo["dangerous_goods"].astype(float),
        ChargeCode.REDELIVERY: (cargo["delivery_attempts"] - 1).clip(lower=0).astype(float),
        ChargeCode.STORAGE: billable_periods(timeline["dwell_hours"], free_hours=terms["free_hours"],
                                             period_hours=24.0),
    }
    for code, value in units.items():
        params[f"units_{code.value}"] = value
    return params


def price(params: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Dollar amount of every bill code (0 when not billed) for each row of parameters."""
    out = pd.DataFrame(index=params.index)
    exact = np.fmax(params["minimum"], params["rate"] * params["kg"])
    out[ChargeCode.LINEHAUL.value] = linehaul_amount(rate=params["rate"], quantity=params["kg"],
                                                     minimum=params["minimum"])
    table = prices.reindex(params["carrier"])
    for code in ACCESSORIAL_CODES:
        units = params[f"units_{code.value}"].to_numpy(float)
        if code in PER_KG_CODES:
            units = units * params["kg"].to_numpy(float)
        out[code.value] = accessorial_amount(rate=table[f"{code.value}_rate"].to_numpy(float), units=units,
                                             minimum=table[f"{code.value}_minimum"].to_numpy(float))
    base = np.where(params["unrounded_fuel"], exact, out[ChargeCode.LINEHAUL.value])
    extras = out[[c.value for c in ACCESSORIAL_CODES]].sum(axis=1).to_numpy()
    base = base + np.where(params["fuel_on_accessorials"], extras, 0.0)
    pct = fuel_surcharge_pct(params["fuel_price"], base_price=params["fuel_base"], step=params["fuel_step"],
                             pct_per_step=params["fuel_pps"])
    out[ChargeCode.FUEL.value] = fuel_amount(base, pct)
    return out[[c.value for c in BILL_CODES]]


__all__ = ["ACCESSORIAL_CODES", "BILL_CODES", "clean_params", "price", "price_table", "shipment_terms",
           "week_price_of"]
