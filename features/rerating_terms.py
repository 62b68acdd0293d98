"""Which terms apply to an invoice, and what each accessorial should cost given the shipment facts.

The contract is the one in force on the *shipment* date (not the invoice date: a carrier may not apply
an amendment to cargo it moved before the amendment took effect). Fuel is the index week containing
the shipment date. Spot shipments have no contract rate; their fuel table and price list are the
carrier's standard terms: the ones most of its contracts share.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.reference import MODE_FUEL_KIND, ChargeBasis, ChargeCode
from features.reference_io import contract_accessorial_table
from features.reference_pricing import accessorial_amount, billable_periods
from features.schemas import Mode

LANE_KEYS = ["mode", "carrier", "origin", "destination"]
TERM_COLUMNS = ["contract_id", "effective_from", "effective_to", "base_rate", "minimum_charge",
                "fuel_base_price", "fuel_step", "fuel_pct_per_step"]
ALWAYS_DUE = frozenset({ChargeCode.SECURITY, ChargeCode.HANDLING})
"""Charged on every air shipment: the security surcharge and terminal handling."""
HAZARD_CODES = frozenset({ChargeCode.DANGEROUS_GOODS, ChargeCode.HAZMAT})
ACCESSORIALS = tuple(c for c in ChargeCode if c not in (ChargeCode.LINEHAUL, ChargeCode.FUEL))


def contract_in_force(frame: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    """Contract columns per row of ``frame`` (lane keys + ``ship_date``); NaN where none is in force."""
    left = frame[[*LANE_KEYS, "ship_date"]].reset_index(names="_row").dropna(subset=["ship_date"])
    right = contracts[[*LANE_KEYS, *TERM_COLUMNS]].sort_values("effective_from")
    merged = pd.merge_asof(left.sort_values("ship_date"), right, left_on="ship_date",
                           right_on="effective_from", by=LANE_KEYS, direction="backward")
    merged = merged.set_index("_row").reindex(frame.index)
    in_force = (merged["effective_to"] >= merged["ship_date"]).to_numpy()
    return pd.DataFrame({c: merged[c].where(in_force) for c in TERM_COLUMNS}, index=frame.index)


def standard_terms(contracts: pd.DataFrame) -> pd.DataFrame:
    """Per (mode, carrier): the contract whose fuel table and price list most of its contracts share."""
    shape = ["mode", "carrier", "fuel_base_price", "fuel_step", "fuel_pct_per_step", "accessorials"]
    counts = contracts.groupby(shape, sort=True)["contract_id"].agg(["size", "min"]).reset_index()
    counts = counts.sort_values(["mode", "carrier", "size", "min"], ascending=[True, True, False, True])
    best = counts.drop_duplicates(["mode", "carrier"])
    return best.rename(columns={"min": "contract_id"})[["mode", "carrier", "contract_id", "fuel_base_price",
                                                        "fuel_step", "fuel_pct_per_step"]]


def week_price(frame: pd.DataFrame, fuel_index: pd.DataFrame) -> np.ndarray:
    """Index price of the week containing the shipment date (NaN if that week was not published)."""
    kind = frame["mode"].map({m.value: MODE_FUEL_KIND[m].value for m in Mode})
    week = frame["ship_date"] - pd.to_timedelta(frame["ship_date"].dt.weekday, unit="D")
    prices = fuel_index.set_index(["fuel_kind", "week_start"])["price_per_gallon"]
    keys = pd.MultiIndex.from_arrays([kind, week])
    return prices.reindex(keys).to_numpy(float)


def _service_hits(services: pd.Series) -> Callable[[ChargeCode], np.ndarray]:
    """Whether a code is among each row's ``;``-separated requested services: the lists are factorized
    once, and each distinct list is split once and tested once per code."""
    codes, distinct = pd.factorize(services.fillna("").astype(str))
    split = [set(text.split(";")) for text in distinct]

    def hits(code: ChargeCode) -> np.ndarray:
        found = np.array([code.value in parts for parts in split], dtype=bool)
        return np.where(codes >= 0, found[codes] if len(found) else False, False)
    return hits


def _units(code: ChargeCode, basis: np.ndarray, *, facts: dict[str, np.ndarray], free: np.ndarray,
           services: Callable[[ChargeCode], np.ndarray]) -> np.ndarray:
    """Billable units the facts support for one accessorial code, by the contract's basis."""
    if code in ALWAYS_DUE:
        evidence = np.ones(len(basis))
    elif code in HAZARD_CODES:
        evidence = facts["dangerous_goods"]
    else:
        evidence = services(code).astype(float)
    dwell = facts["dwell_hours"]
    by_basis = {ChargeBasis.PER_KG.value: evidence * facts["chargeable_weight_kg"],
                ChargeBasis.PER_DAY.value: billable_periods(dwell, free_hours=free, period_hours=24.0),
                ChargeBasis.PER_HOUR.value: billable_periods(dwell, free_hours=free, period_hours=1.0),
                ChargeBasis.PER_ATTEMPT.value: np.maximum(facts["delivery_attempts"] - 1, 0)}
    out = evidence.copy()
    for name, values in by_basis.items():
        out = np.where(basis == name, values, out)
    timed = (basis == ChargeBasis.PER_DAY.value) | (basis == ChargeBasis.PER_HOUR.value)
    return np.where(timed & np.isnan(dwell), np.nan, out)


def _price_lists(contracts: pd.DataFrame, distinct: pd.Index) -> dict[str, dict[str, np.ndarray]]:
    """Per accessorial code, the price list fields (basis, rate, minimum, free_hours) of each of the
    ``distinct`` contracts, as object arrays in their order: None where the contract does not price the
    code (a minimum or free time left out of a price is 0.0: :func:`contract_accessorial_table`). A
    contract that prices a code twice, or two contracts under one id, raise ValueError: which price
    applies would be a guess (the loaders refuse both)."""
    wanted = {cid: i for i, cid in enumerate(distinct)}
    table = contract_accessorial_table(contracts)
    out: dict[str, dict[str, np.ndarray]] = {}
    seen: set[tuple[str, str]] = set()
    for cid, code, *fields in table[["contract_id", "code", *_PRICE_FIELDS]].itertuples(index=False):
        row = wanted.get(cid)
        if row is None:
            continue
        if (cid, code) in seen:
            raise ValueError(f"contract {cid} prices {code} more than once")
        seen.add((cid, code))
        arrays = out.setdefault(code, {f: np.full(len(distinct), None, dtype=object) for f in _PRICE_FIELDS})
        for field, value in zip(_PRICE_FIELDS, fields, strict=True):
            arrays[field][row] = value
    return out


_PRICE_FIELDS = ("basis", "rate", "minimum", "free_hours")


def _per_row(values: np.ndarray | None, ids: np.ndarray, *, fill: object) -> np.ndarray:
    """Values of distinct contracts (``None``: no contract prices the code) spread to rows by factorized
    id (``-1`` = no contract: ``fill``), as objects (the callers convert them): a missing value is
    ``fill`` too. In numpy: pandas' ``fillna`` downcast an empty object column (no contract at all: the
    service's one-invoice case) with a FutureWarning on every call."""
    out = np.full(len(ids), fill, dtype=object)
    if values is None:
        return out
    known = ids >= 0
    out[known] = values[ids[known]]
    out[pd.isna(out)] = fill
    return out


def expected_accessorials(frame: pd.DataFrame, contracts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per accessorial code: expected units and dollars, contract free hours (rows follow ``frame``).

    ``frame`` needs ``terms_contract_id`` and the shipment facts. A code the contract does not price is
    expected to cost nothing; NaN means we cannot tell (a missing dwell scan, or no terms at all for
    the carrier). Worked in numpy over each code and the frame's columns read once; the three frames are
    built at the end (a column inserted at a time cost ~20 ms of a single invoice).
    """
    ids, distinct = pd.factorize(frame["terms_contract_id"])
    priced = _price_lists(contracts, distinct)
    facts = {name: frame[name].astype(float).to_numpy() for name in
             ("dangerous_goods", "dwell_hours", "chargeable_weight_kg", "delivery_attempts")}
    services = _service_hits(frame["requested_services"])
    columns: dict[str, dict[str, np.ndarray]] = {"units": {}, "amount": {}, "free_hours": {}}
    for code in ACCESSORIALS:
        prices = priced.get(code.value, {})
        free = _per_row(prices.get("free_hours"), ids, fill=0.0).astype(float)
        basis = _per_row(prices.get("basis"), ids, fill=ChargeBasis.FLAT.value)
        units = _units(code, basis, facts=facts, free=free, services=services)
        rate = _per_row(prices.get("rate"), ids, fill=np.nan).astype(float)
        amount = accessorial_amount(rate=np.nan_to_num(rate), units=np.nan_to_num(units),
                                    minimum=_per_row(prices.get("minimum"), ids, fill=0.0).astype(float))
        unknown = np.isnan(units) | (ids < 0)  # no facts, or a carrier whose terms we do not hold
        columns["units"][code.value] = units
        columns["amount"][code.value] = np.where(unknown, np.nan, np.where(np.isnan(rate), 0.0, amount))
        columns["free_hours"][code.value] = free
    return {name: pd.DataFrame(values, index=frame.index, columns=[c.value for c in ACCESSORIALS])
            for name, values in columns.items()}


__all__ = ["ACCESSORIALS", "LANE_KEYS", "TERM_COLUMNS", "contract_in_force", "expected_accessorials",
           "standard_terms", "week_price"]
