"""The ways carriers overbill in the invoice world, each a change to the billing parameters.

Every scenario has an eligibility rule (it can only happen to some shipments: a divisor error needs
cargo whose dimensional weight dominates, carrier-caused storage needs a delayed or cancelled flight)
and a change to the parameters. Magnitudes are documented in docs/invoice-world.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.reference import ChargeCode, Discrepancy
from features.reference_pricing import billable_periods, round_up_weight

MATERIAL_USD = 2.00
MATERIAL_SHARE = 0.02
"""A variance is immaterial (clean) unless it exceeds both $2.00 and 2 % of the component."""
AFFECTED_CODES = {
    Discrepancy.RATE_OVERCHARGE: (ChargeCode.LINEHAUL, ChargeCode.FUEL),
    Discrepancy.FUEL_SURCHARGE_ERROR: (ChargeCode.FUEL,),
    Discrepancy.WEIGHT_OVERBILLED: (ChargeCode.LINEHAUL, ChargeCode.FUEL, ChargeCode.SECURITY),
    Discrepancy.UNBACKED_ACCESSORIAL: (ChargeCode.STORAGE, ChargeCode.REDELIVERY, ChargeCode.DANGEROUS_GOODS,
                                       ChargeCode.REBOOKING),
}
"""Codes whose amounts a class of problem changes (fuel follows an inflated linehaul)."""


@dataclass(frozen=True)
class Context:
    """Everything a scenario may look at (index-aligned per shipment), and the world's random stream."""

    ships: pd.DataFrame
    cargo: pd.DataFrame
    terms: pd.DataFrame
    fuel: pd.DataFrame
    rng: np.random.Generator
    timeline: pd.DataFrame | None = None

    def dim_kg(self) -> np.ndarray:
        """True dimensional weight (IATA divisor) of every shipment."""
        c = self.cargo
        return (c["pieces"] * c["length_cm"] * c["width_cm"] * c["height_cm"] / 6000.0).to_numpy(float)

    def events(self) -> pd.DataFrame:
        """The true timeline (dwell, release, delivery); drawn after storage scenarios are chosen."""
        if self.timeline is None:
            raise ValueError("the timeline is not drawn yet")
        return self.timeline

    def col(self, name: str) -> np.ndarray:
        """A cargo column as an array."""
        return self.cargo[name].to_numpy()


@dataclass(frozen=True)
class Scenario:
    """One named way of overbilling: who it can happen to, and what it changes in the bill."""

    name: str
    label: Discrepancy
    eligible: Callable[[Context], np.ndarray]
    apply: Callable[[pd.DataFrame, Context], pd.DataFrame]


def _every(ctx: Context) -> np.ndarray:
    return np.ones(len(ctx.ships), dtype=bool)


def _not_spot(ctx: Context) -> np.ndarray:
    return ~ctx.terms["spot"].to_numpy(bool)


def _spot(ctx: Context) -> np.ndarray:
    return ctx.terms["spot"].to_numpy(bool)


def _amended_soon(ctx: Context) -> np.ndarray:
    """Shipped within 30 days before an amendment that raised the rate by more than 3 %."""
    t, ship = ctx.terms, ctx.ships["ship_date"]
    window = (ship < t["amended_from"]) & (ship >= t["amended_from"] - pd.Timedelta(days=30))
    return (_not_spot(ctx) & window.fillna(False).to_numpy()
            & (t["amended_rate"] > t["contract_rate"] * 1.03).fillna(False).to_numpy())


def _at_minimum(ctx: Context) -> np.ndarray:
    t = ctx.terms
    below = t["rate"] * ctx.cargo["chargeable_kg"] < t["minimum"]
    return _not_spot(ctx) & below.to_numpy() & (t["tariff_minimum"] > t["minimum"]).to_numpy()


def _dims_dominate(ctx: Context) -> np.ndarray:
    return ctx.dim_kg() > ctx.col("actual_weight_kg") * 1.05


def _collect(ctx: Context) -> np.ndarray:
    return ~ctx.col("wants_delivery")


def _delayed_collect(ctx: Context) -> np.ndarray:
    return _collect(ctx) & (ctx.ships["arrival_delay_hours"].to_numpy() >= 3.0)


def _single_attempt(ctx: Context) -> np.ndarray:
    return ctx.col("wants_delivery") & (ctx.col("delivery_attempts") == 1)


def _ordinary_cargo(ctx: Context) -> np.ndarray:
    return ~ctx.col("dangerous_goods")


def _carrier_cancelled(ctx: Context) -> np.ndarray:
    return ctx.ships["cancelled"].to_numpy(bool) & ~ctx.col("wants_rebooking")


def _rate_above(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Rate 4-30 % above contract, most often at the low end (a skewed beta)."""
    return rows.assign(rate=np.round(rows["rate"] * (1.04 + 0.26 * ctx.rng.beta(1.2, 3.0, len(rows))), 3))


def _amended_rate(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(rate=ctx.terms.loc[rows.index, "amended_rate"])


def _tariff_minimum(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(minimum=ctx.terms.loc[rows.index, "tariff_minimum"])


def _above_quote(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(rate=np.round(rows["rate"] * ctx.rng.uniform(1.10, 1.40, len(rows)), 3))


def _stale_week(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Highest index price of the six weeks before the shipment week: a stale (and dearer) lookup."""
    prices = ctx.fuel.set_index("week_start")["price_per_gallon"]
    peak = prices.shift(1).rolling(6, min_periods=1).max()
    ship = ctx.ships.loc[rows.index, "ship_date"]
    week = ship - pd.to_timedelta(ship.dt.weekday, unit="D")
    return rows.assign(fuel_price=np.fmax(week.map(peak).to_numpy(float), rows["fuel_price"].to_numpy(float)))


def _fuel_on_accessorials(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(fuel_on_accessorials=True)


def _superseded_table(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    factor = ctx.rng.uniform(1.25, 1.6, len(rows))
    return rows.assign(fuel_pps=np.round(rows["fuel_pps"] * factor / 0.05) * 0.05)


def _inflated_weight(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(kg=round_up_weight(rows["kg"] * ctx.rng.uniform(1.08, 1.45, len(rows))))


def _courier_divisor(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Dimensional weight at 5,000 cm3/kg (the courier divisor) instead of IATA's 6,000: +20 %."""
    return rows.assign(kg=round_up_weight(ctx.dim_kg()[rows.index.to_numpy()] * 1.2))


def _pallet_tare(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Gross weight including 15-30 kg of pallet per piece, which the shipper tendered loose."""
    cargo = ctx.cargo.loc[rows.index]
    gross = cargo["actual_weight_kg"] + cargo["pieces"] * ctx.rng.uniform(15, 30, len(rows))
    return rows.assign(kg=round_up_weight(np.fmax(rows["kg"], gross.to_numpy())))


def _storage_inside_free_time(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return rows.assign(units_storage=ctx.rng.choice([1.0, 2.0], len(rows), p=[0.7, 0.3]))


def _storage_from_schedule(rows: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The carrier starts the storage clock at the *scheduled* arrival, charging for its own delay."""
    elapsed = ctx.events().loc[rows.index, "dwell_hours"] + ctx.ships.loc[rows.index, "arrival_delay_hours"]
    days = billable_periods(elapsed, free_hours=ctx.terms.loc[rows.index, "free_hours"], period_hours=24.0)
    return rows.assign(units_storage=np.maximum(days, 1.0))


def _bill_once(column: str) -> Callable[[pd.DataFrame, Context], pd.DataFrame]:
    return lambda rows, ctx: rows.assign(**{column: 1.0})


def _scenarios() -> tuple[Scenario, ...]:
    rate, fuel = Discrepancy.RATE_OVERCHARGE, Discrepancy.FUEL_SURCHARGE_ERROR
    weight, acc = Discrepancy.WEIGHT_OVERBILLED, Discrepancy.UNBACKED_ACCESSORIAL
    return (
        Scenario("rate_above_contract", rate, _not_spot, _rate_above),
        Scenario("amended_rate_before_effective", rate, _amended_soon, _amended_rate),
        Scenario("tariff_minimum_instead_of_contract", rate, _at_minimum, _tariff_minimum),
        Scenario("spot_above_quote", rate, _spot, _above_quote),
        Scenario("stale_fuel_week", fuel, _every, _stale_week),
        Scenario("fuel_on_accessorials", fuel, _every, _fuel_on_accessorials),
        Scenario("superseded_fuel_table", fuel, _every, _superseded_table),
        Scenario("inflated_weight", weight, _every, _inflated_weight),
        Scenario("courier_dim_divisor", weight, _dims_dominate, _courier_divisor),
        Scenario("pallet_tare_billed", weight, _every, _pallet_tare),
        Scenario("storage_within_free_time", acc, _collect, _storage_inside_free_time),
        Scenario("storage_for_carrier_delay", acc, _delayed_collect, _storage_from_schedule),
        Scenario("redelivery_without_attempt", acc, _single_attempt, _bill_once("units_redelivery")),
        Scenario("dangerous_goods_fee_on_ordinary_cargo", acc, _ordinary_cargo,
                 _bill_once("units_dangerous_goods")),
        Scenario("rebooking_after_carrier_cancellation", acc, _carrier_cancelled,
                 _bill_once("units_rebooking")),
    )


SCENARIOS: dict[str, Scenario] = {s.name: s for s in _scenarios()}


def storage_dwell_override(names: np.ndarray, ctx: Context) -> np.ndarray:
    """True dwell that makes a storage scenario what it claims (set before the timeline is drawn).

    Within free time: 20-85 % of the free hours. Carrier delay: short enough that the cargo was
    collected within free time of its *actual* arrival, long enough to exceed it from the schedule.
    """
    n = len(names)
    free = ctx.terms["free_hours"].to_numpy(float)
    delay = ctx.ships["arrival_delay_hours"].to_numpy(float)
    within = free * ctx.rng.uniform(0.2, 0.85, n)
    low = np.maximum(1.0, free - delay + 0.5)
    late = low + (free - 0.5 - low) * ctx.rng.random(n)
    out = np.full(n, np.nan)
    out = np.where(names == "storage_within_free_time", within, out)
    return np.where(names == "storage_for_carrier_delay", late, out)


def material(label: Discrepancy, delta: pd.DataFrame, *, clean: pd.DataFrame,
             kg_ratio: np.ndarray) -> np.ndarray:
    """Whether a change is big enough to dispute: beyond $2 and 2 % of the component it touches."""
    if label == Discrepancy.UNBACKED_ACCESSORIAL:
        return delta.sum(axis=1).to_numpy() > MATERIAL_USD
    main = {Discrepancy.RATE_OVERCHARGE: [ChargeCode.LINEHAUL.value],
            Discrepancy.FUEL_SURCHARGE_ERROR: [ChargeCode.FUEL.value]}.get(
        label, [c.value for c in AFFECTED_CODES[label]])
    change = delta[main].sum(axis=1).to_numpy()
    base = clean[main].sum(axis=1).to_numpy()
    ok = change > np.maximum(MATERIAL_USD, MATERIAL_SHARE * base)
    return ok & (kg_ratio > 1.0 + MATERIAL_SHARE) if label == Discrepancy.WEIGHT_OVERBILLED else ok


__all__ = ["AFFECTED_CODES", "MATERIAL_SHARE", "MATERIAL_USD", "SCENARIOS", "Context", "Scenario", "material",
           "storage_dwell_override"]
