"""Which shipments the carriers overbill, how, and by how much (before invoices are cut).

Targets are shares of shipments. A scenario is applied only where it is possible and *material* (beyond
$2 and 2 %); a candidate whose change turns out immaterial is skipped, not counted. A minority of
overbilled shipments get a second, different problem on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.invoice_world_billing import price
from features.invoice_world_discrepancies import SCENARIOS, Context, material
from features.reference import Discrepancy

CLASS_SHARES = {Discrepancy.RATE_OVERCHARGE: 0.022, Discrepancy.FUEL_SURCHARGE_ERROR: 0.016,
                Discrepancy.UNBACKED_ACCESSORIAL: 0.024, Discrepancy.WEIGHT_OVERBILLED: 0.016}
"""Target share of shipments whose carrier bill has each component problem."""
SUBTYPE_WEIGHTS = {
    Discrepancy.RATE_OVERCHARGE: {"rate_above_contract": 0.55, "amended_rate_before_effective": 0.15,
                                  "tariff_minimum_instead_of_contract": 0.10, "spot_above_quote": 0.20},
    Discrepancy.FUEL_SURCHARGE_ERROR: {"stale_fuel_week": 0.40, "fuel_on_accessorials": 0.30,
                                       "superseded_fuel_table": 0.30},
    Discrepancy.WEIGHT_OVERBILLED: {"inflated_weight": 0.50, "courier_dim_divisor": 0.25,
                                    "pallet_tare_billed": 0.25},
    Discrepancy.UNBACKED_ACCESSORIAL: {"storage_within_free_time": 0.25, "storage_for_carrier_delay": 0.25,
                                       "redelivery_without_attempt": 0.15,
                                       "dangerous_goods_fee_on_ordinary_cargo": 0.20,
                                       "rebooking_after_carrier_cancellation": 0.15},
}
PREMATURE_SHARE = 0.011
PREMATURE_WEIGHTS = {"billed_at_departure": 0.7, "billed_at_cancelled_schedule": 0.3}
SECOND_PROBLEM_SHARE = 0.12
SECOND_PROBLEMS = ("rate_above_contract", "superseded_fuel_table", "inflated_weight",
                   "dangerous_goods_fee_on_ordinary_cargo")


@dataclass(frozen=True)
class Plan:
    """Per shipment: scenario names (``""`` for none), billed parameters and per-code overbilling."""

    first: np.ndarray
    second: np.ndarray
    billed: pd.DataFrame
    clean_amounts: pd.DataFrame
    billed_amounts: pd.DataFrame
    first_delta: pd.DataFrame
    second_delta: pd.DataFrame


def _put(frame: pd.DataFrame, idx: np.ndarray, *, rows: pd.DataFrame) -> None:
    """Overwrite rows at positions ``idx`` column by column (keeps each column's dtype)."""
    for column in rows.columns:
        frame.loc[frame.index[idx], column] = rows[column].to_numpy()


def _quota(share: float, weight: float, *, n: int) -> int:
    return int(round(share * weight * n))


def plan_unbacked(ctx: Context) -> np.ndarray:
    """Unbacked-accessorial scenarios, chosen first because storage ones shape the true dwell."""
    n = len(ctx.ships)
    names = np.full(n, "", dtype=object)
    label = Discrepancy.UNBACKED_ACCESSORIAL
    for name, weight in SUBTYPE_WEIGHTS[label].items():
        pool = np.flatnonzero(SCENARIOS[name].eligible(ctx) & (names == ""))
        take = ctx.rng.permutation(pool)[:_quota(CLASS_SHARES[label], weight, n=n)]
        names[take] = name
    return names


def _try(name: str, idx: np.ndarray, *, base: pd.DataFrame, ctx: Context,
         prices: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply a scenario to rows ``idx`` of ``base``; keep those where the change is material."""
    scenario = SCENARIOS[name]
    rows = base.iloc[idx]
    changed = scenario.apply(rows, ctx)
    before = price(rows, prices)
    delta = price(changed, prices) - before
    ratio = changed["kg"].to_numpy(float) / rows["kg"].to_numpy(float)
    keep = material(scenario.label, delta, clean=before, kg_ratio=ratio)
    return idx[keep], changed[keep]


def _plan_priced(first: np.ndarray, clean: pd.DataFrame, *, ctx: Context, prices: pd.DataFrame) -> pd.DataFrame:
    """Choose rate, fuel and weight scenarios (material ones only) and apply every first scenario."""
    n = len(clean)
    billed = clean.copy()
    for label in (Discrepancy.RATE_OVERCHARGE, Discrepancy.FUEL_SURCHARGE_ERROR, Discrepancy.WEIGHT_OVERBILLED):
        for name, weight in SUBTYPE_WEIGHTS[label].items():
            quota = _quota(CLASS_SHARES[label], weight, n=n)
            pool = ctx.rng.permutation(np.flatnonzero(SCENARIOS[name].eligible(ctx) & (first == "")))
            idx, changed = _try(name, pool[:3 * quota + 20], base=clean, ctx=ctx, prices=prices)
            first[idx[:quota]] = name
            _put(billed, idx[:quota], rows=changed.iloc[:quota])
    for name in SUBTYPE_WEIGHTS[Discrepancy.UNBACKED_ACCESSORIAL]:
        idx = np.flatnonzero(first == name)
        _put(billed, idx, rows=SCENARIOS[name].apply(clean.iloc[idx], ctx))
    return billed


def _plan_second(first: np.ndarray, clean: pd.DataFrame, *, billed: pd.DataFrame, ctx: Context,
                 prices: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Give some overbilled shipments a second problem of another class; returns names and its solo params."""
    second = np.full(len(first), "", dtype=object)
    alone = clean.copy()
    candidates = np.flatnonzero((first != "") & (ctx.rng.random(len(first)) < SECOND_PROBLEM_SHARE))
    choice = ctx.rng.choice(len(SECOND_PROBLEMS), size=len(candidates))
    labels = np.array([SCENARIOS[f].label for f in first[candidates]], dtype=object)
    for k, name in enumerate(SECOND_PROBLEMS):
        scenario = SCENARIOS[name]
        mine = candidates[(choice == k) & (labels != scenario.label)]
        mine = mine[scenario.eligible(ctx)[mine]]
        idx, changed = _try(name, mine, base=clean, ctx=ctx, prices=prices)
        second[idx] = name
        _put(alone, idx, rows=changed)
        touched = [c for c in changed.columns if not changed[c].equals(clean[c].iloc[idx])]
        _put(billed, idx, rows=changed[touched])
    return second, alone


def plan_billing(first: np.ndarray, clean: pd.DataFrame, *, ctx: Context, prices: pd.DataFrame) -> Plan:
    """All component problems of all shipments, with clean, billed and per-problem amounts per code."""
    first = first.copy()
    billed = _plan_priced(first, clean, ctx=ctx, prices=prices)
    only_first = billed.copy()
    second, alone = _plan_second(first, clean, billed=billed, ctx=ctx, prices=prices)
    clean_amounts = price(clean, prices)
    return Plan(first=first, second=second, billed=billed, clean_amounts=clean_amounts,
                billed_amounts=price(billed, prices),
                first_delta=price(only_first, prices) - clean_amounts,
                second_delta=price(alone, prices) - clean_amounts)


def plan_premature(ctx: Context, taken: np.ndarray) -> tuple[np.ndarray, pd.Series]:
    """Invoices cut before delivery: at departure, or at the original schedule of a cancelled flight."""
    n = len(ctx.ships)
    delivered = ctx.events()["delivered_at"].dt.normalize()
    dates = {"billed_at_departure": ctx.ships["ship_date"],
             "billed_at_cancelled_schedule": ctx.ships["scheduled_arrival"].dt.normalize()}
    eligible = {"billed_at_departure": delivered > dates["billed_at_departure"],
                "billed_at_cancelled_schedule": ctx.ships["cancelled"].astype(bool)
                & (delivered > dates["billed_at_cancelled_schedule"])}
    names = np.full(n, "", dtype=object)
    invoice_date = pd.Series(pd.NaT, index=ctx.ships.index, dtype="datetime64[ns, UTC]")
    for name, weight in PREMATURE_WEIGHTS.items():
        pool = np.flatnonzero(eligible[name].to_numpy() & ~taken & (names == ""))
        take = ctx.rng.permutation(pool)[:_quota(PREMATURE_SHARE, weight, n=n)]
        names[take] = name
        invoice_date.iloc[take] = dates[name].iloc[take]
    return names, invoice_date


__all__ = ["CLASS_SHARES", "PREMATURE_SHARE", "Plan", "SECOND_PROBLEMS", "SECOND_PROBLEM_SHARE",
           "SUBTYPE_WEIGHTS", "plan_billing", "plan_premature", "plan_unbacked"]
