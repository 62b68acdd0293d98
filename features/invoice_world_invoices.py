"""Cutting invoices from bills: dates, split (supplementary) invoices, duplicates and invoice numbers.

Work happens on a *wide* frame, one row per invoice and one amount column per charge code, which is
melted into invoice lines at the end. Each row remembers the shipment it bills (``ship``, a position)
and what kind of invoice it is: ``main``, ``supplement`` (accessorials billed separately) or
``duplicate`` (a second bill for something already billed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.invoice_world_billing import BILL_CODES, price
from features.invoice_world_scenarios import Plan
from features.reference import ChargeCode
from features.reference_pricing import round_cents, round_up_weight

CODES = [c.value for c in BILL_CODES]
SUPPLEMENT_CODES = (ChargeCode.STORAGE.value, ChargeCode.REDELIVERY.value)
SPLIT_PROBABILITY = {ChargeCode.STORAGE.value: 0.8, ChargeCode.REDELIVERY.value: 0.6}
"""Chance that storage / re-delivery (known only after release) are billed on a later, separate invoice."""
DUPLICATE_SHARE = 0.013
DUPLICATE_WEIGHTS = {"resent_with_suffix": 0.30, "rekeyed_number": 0.35, "reissued_new_number": 0.15,
                     "wrong_shipment_reference": 0.20}
"""Kinds of duplicate. The last re-bills a shipment under the reference of a neighbouring shipment of the
same lane (a clerk picked the wrong air waybill), so it does not look like a repeat of its own shipment."""
NEW_NUMBER_KINDS = frozenset({"reissued_new_number", "wrong_shipment_reference"})
BALANCE_DUE_SHARE = 0.015
"""Shipments first billed on the booked weight, the balance billed after the carrier re-weighed (legit)."""
BALANCE_CODES = (ChargeCode.LINEHAUL.value, ChargeCode.FUEL.value, ChargeCode.SECURITY.value)
_DAY = pd.Timedelta(days=1)


def _days(values: np.ndarray) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.asarray(values, dtype=float), unit="D")


def main_invoice_dates(delivered_at: pd.Series, *, not_before: pd.Series, fixed: pd.Series,
                       rng: np.random.Generator) -> pd.Series:
    """Usually 1-14 days after delivery (4 % the same day); premature ones are fixed earlier dates."""
    n = len(delivered_at)
    lag = np.where(rng.random(n) < 0.04, 0, np.minimum(1 + rng.poisson(2.5, n), 14))
    date = delivered_at.dt.normalize() + _days(lag)
    late_start = not_before + _days(rng.integers(0, 7, n))
    date = date.where(~(late_start > date).fillna(False).to_numpy(), late_start)
    return date.where(fixed.isna(), fixed)


def wide_invoices(ships: pd.DataFrame, plan: Plan, *, main_date: pd.Series, delivered_at: pd.Series,
                  rng: np.random.Generator) -> pd.DataFrame:
    """Main invoices for every shipment plus supplementary ones for late-known accessorials."""
    n = len(ships)
    amounts = plan.billed_amounts.reset_index(drop=True)
    split = np.zeros(n, dtype=bool)
    for code, chance in SPLIT_PROBABILITY.items():
        split |= (amounts[code].to_numpy() > 0) & (rng.random(n) < chance)
    base = pd.DataFrame({"ship": np.arange(n), "carrier": ships["carrier"].to_numpy(),
                         "shipment_id": ships["shipment_id"].to_numpy(), "kind": "main",
                         "invoice_date": main_date.to_numpy(), "kg": plan.billed["kg"].to_numpy(float)})
    main = pd.concat([base, amounts], axis=1)
    main.loc[split, list(SUPPLEMENT_CODES)] = 0.0
    supp = pd.concat([base, amounts], axis=1).loc[split].copy()
    supp["kind"], supp["kg"] = "supplement", np.nan
    supp[[c for c in CODES if c not in SUPPLEMENT_CODES]] = 0.0
    after = pd.concat([main_date[split], delivered_at[split].dt.normalize()], axis=1).max(axis=1)
    supp["invoice_date"] = (after + _days(rng.integers(3, 26, int(split.sum())))).to_numpy()
    wide = pd.concat([main, supp], ignore_index=True)
    wide["original"] = -1
    wide["duplicate_kind"] = ""
    return wide


def add_balance_due(wide: pd.DataFrame, plan: Plan, *, eligible: np.ndarray, prices: pd.DataFrame,
                    rng: np.random.Generator) -> pd.DataFrame:
    """Bill some shipments on 60-90 % of the weight first and the balance 5-30 days later (both clean).

    ``wide`` must still hold exactly one main row per shipment, in shipment order.
    """
    n = len(plan.billed)
    pick = np.sort(rng.permutation(np.flatnonzero(eligible))[:int(round(BALANCE_DUE_SHARE * n))])
    partial = plan.billed.iloc[pick].copy()
    partial["kg"] = round_up_weight(partial["kg"] * rng.uniform(0.6, 0.9, len(pick)))
    part = price(partial, prices)[list(BALANCE_CODES)].to_numpy()
    wide = wide.copy()
    balance = wide.loc[pick].copy()
    balance[CODES] = 0.0
    balance[list(BALANCE_CODES)] = wide.loc[pick, list(BALANCE_CODES)].to_numpy() - part
    balance["kg"] = wide.loc[pick, "kg"].to_numpy() - partial["kg"].to_numpy()
    balance["kind"] = "balance"
    balance["invoice_date"] = balance["invoice_date"] + _days(rng.integers(5, 31, len(pick)))
    wide.loc[pick, list(BALANCE_CODES)] = part
    wide.loc[pick, "kg"] = partial["kg"].to_numpy()
    return pd.concat([wide, balance], ignore_index=True)


def add_duplicates(wide: pd.DataFrame, n_shipments: int, *, neighbor_ids: np.ndarray,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Second bills for invoices already sent: resent, re-keyed, re-issued or mis-referenced."""
    count = min(int(round(DUPLICATE_SHARE * n_shipments)), len(wide))
    source = np.sort(rng.choice(len(wide), size=count, replace=False))
    dup = wide.iloc[source].copy()
    kinds = rng.choice(list(DUPLICATE_WEIGHTS), size=count, p=list(DUPLICATE_WEIGHTS.values()))
    gap = np.select([kinds == "resent_with_suffix", kinds == "rekeyed_number"],
                    [rng.integers(1, 21, count), rng.integers(3, 36, count)], rng.integers(2, 46, count))
    dup["invoice_date"] = dup["invoice_date"] + _days(gap)
    dup["kind"], dup["original"], dup["duplicate_kind"] = "duplicate", source, kinds
    wrong = kinds == "wrong_shipment_reference"
    dup.loc[wrong, "shipment_id"] = neighbor_ids[dup.loc[wrong, "ship"].to_numpy()]
    rekeyed = kinds == "rekeyed_number"
    first_code = dup[CODES].gt(0).to_numpy().argmax(axis=1)  # linehaul on a main invoice
    tweak = 1.0 + rng.choice([-1.0, 1.0], count) * rng.uniform(0.003, 0.025, count)
    values = dup[CODES].to_numpy()
    rows = np.flatnonzero(rekeyed)
    values[rows, first_code[rows]] = round_cents(values[rows, first_code[rows]] * tweak[rows])
    dup[CODES] = values
    return pd.concat([wide, dup], ignore_index=True)


def _variant(number: str, how: str, *, prefix_length: int, rng: np.random.Generator) -> str:
    """A re-keyed invoice number: the same document typed again by a different clerk or system."""
    prefix, digits = number[:prefix_length], number[prefix_length:]
    if how == "dash":
        return f"{prefix}-{digits}"
    if how == "strip":
        return prefix + digits.lstrip("0")
    if how == "space":
        return f"{prefix} {digits}"
    at = int(rng.integers(0, len(digits) - 1))
    return prefix + digits[:at] + digits[at + 1] + digits[at] + digits[at + 2:]


def assign_numbers(wide: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Receipt time, then per-carrier sequential invoice numbers; duplicates reuse or mangle them."""
    wide = wide.copy()
    wide["received_at"] = (wide["invoice_date"] + pd.to_timedelta(rng.uniform(2, 20, len(wide)), unit="h")
                           ).dt.floor("min")
    numbered = (wide["kind"] != "duplicate") | wide["duplicate_kind"].isin(NEW_NUMBER_KINDS)
    order = wide[numbered].sort_values(["received_at", "ship"]).index
    seq = wide.loc[order].groupby("carrier").cumcount()
    carriers = sorted(wide["carrier"].unique())
    start = dict(zip(carriers, rng.integers(100_000, 900_000, len(carriers)), strict=True))
    wide["invoice_id"] = ""
    carrier = wide.loc[order, "carrier"]
    wide.loc[order, "invoice_id"] = carrier + (carrier.map(start) + seq).astype(str).str.zfill(7)
    taken = set(wide["invoice_id"])
    for row in np.flatnonzero(~numbered.to_numpy()):  # only the ~1 % resent / re-keyed duplicates
        original = wide.at[int(wide.at[row, "original"]), "invoice_id"]
        how = "suffix" if wide.at[row, "duplicate_kind"] == "resent_with_suffix" else str(
            rng.choice(["dash", "strip", "space", "transpose"]))
        prefix_length = len(wide.at[row, "carrier"])
        number = original + str(rng.choice(["-A", "-R", "-1", "R"])) if how == "suffix" else _variant(
            original, how, prefix_length=prefix_length, rng=rng)
        if number in taken or number == original:
            number = f"{original}-DUP"
        taken.add(number)
        wide.at[row, "invoice_id"] = number
    return wide


__all__ = ["BALANCE_DUE_SHARE", "CODES", "DUPLICATE_SHARE", "DUPLICATE_WEIGHTS", "SPLIT_PROBABILITY",
           "SUPPLEMENT_CODES", "add_balance_due", "add_duplicates", "assign_numbers", "main_invoice_dates",
           "wide_invoices"]
