"""The rules-only baseline: what a conventional freight-audit system does with the re-rating deltas.

Tolerance rules, checked in a fixed order (the first that fires names the class), mirroring how such
systems work: reject duplicates first, then hold invoices without proof of delivery, then dispute
weight, rate, fuel and accessorial variances beyond tolerance. It is meant as an honest yardstick for
the model: tolerances are the ones carriers and auditors commonly agree (2 % and $2; 15 % on estimated
spot rates) and evidence the facts lack (no dimensions, no dwell scan) is not held against the carrier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.reference import Discrepancy
from features.rerating_evidence import ACCESSORIAL_NAMES

TOLERANCE_USD = 2.00
TOLERANCE_SHARE = 0.02
SPOT_TOLERANCE_SHARE = 0.15
"""Spot quotes vary shipment to shipment and are estimated from history: a wider band."""
FUEL_TOLERANCE_POINTS = 0.5
DUPLICATE_OVERLAP = 0.5
DUPLICATE_SHIPMENT_BILLED = 1.5
"""A repeat of already-billed codes is a duplicate when the shipment is now billed ~1.5x its cost."""
DUPLICATE_NUMBER_SIMILARITY = 0.75
WEIGHT_PRICED_CODES = ("security",)
"""Accessorials priced per kg: their excess is a weight question, judged with the weight rule."""


def _over(delta: pd.Series, expected: pd.Series, *, share: float | np.ndarray = TOLERANCE_SHARE) -> pd.Series:
    """Delta beyond both the dollar and the relative tolerance (NaN never fires)."""
    return (delta > np.maximum(TOLERANCE_USD, share * expected.abs())).fillna(False)


def _unbacked_usd(f: pd.DataFrame) -> pd.Series:
    """Dollars billed beyond the evidence on accessorials not priced by weight."""
    columns = [f"{code}_delta" for code in ACCESSORIAL_NAMES if code not in WEIGHT_PRICED_CODES]
    return f[columns].clip(lower=0).sum(axis=1)


def _rules(f: pd.DataFrame) -> list[tuple[Discrepancy, pd.Series]]:
    billed_share = f["shipment_billed_to_expected"]
    over_billed = (billed_share > DUPLICATE_SHIPMENT_BILLED) | billed_share.isna()
    same_shipment_repeat = (f["prior_same_shipment_code_overlap"] >= DUPLICATE_OVERLAP) & over_billed
    rekeyed = ((f["near_amount_match"] == 1) & (f["near_amount_same_shipment"] == 1)
               & (f["near_amount_number_similarity"] >= DUPLICATE_NUMBER_SIMILARITY))
    has_weight = (f["has_linehaul"] == 1) & (f["dims_missing"] == 0)
    weight_usd = f["linehaul_delta"].fillna(0) + f["fuel_delta"].fillna(0) + f["security_delta"].fillna(0)
    rate_share = np.where(f["is_spot"] == 1, SPOT_TOLERANCE_SHARE, TOLERANCE_SHARE)
    fuel_rule = (f["fuel_pct_delta"] > FUEL_TOLERANCE_POINTS) & _over(f["fuel_delta"], f["fuel_expected"])
    return [
        (Discrepancy.DUPLICATE, same_shipment_repeat | rekeyed),
        (Discrepancy.BILLED_BEFORE_DELIVERY, f["pod_present_at_invoice"] == 0),
        (Discrepancy.WEIGHT_OVERBILLED, has_weight & (f["weight_ratio_billed_chargeable"] > 1 + TOLERANCE_SHARE)
         & (weight_usd > TOLERANCE_USD)),
        (Discrepancy.RATE_OVERCHARGE,
         _over(f["linehaul_delta_at_billed_weight"], f["linehaul_expected"], share=rate_share)),
        (Discrepancy.FUEL_SURCHARGE_ERROR, fuel_rule.fillna(False)),
        (Discrepancy.UNBACKED_ACCESSORIAL, _unbacked_usd(f) > TOLERANCE_USD),
    ]


def rules_only_audit(features: pd.DataFrame) -> pd.Series:
    """One class per invoice (index as ``features``), from tolerance rules on the audit features."""
    verdict = np.full(len(features), Discrepancy.CLEAN.value, dtype=object)
    decided = np.zeros(len(features), dtype=bool)
    for label, fired in _rules(features):
        hit = fired.to_numpy(bool) & ~decided
        verdict[hit] = label.value
        decided |= hit
    return pd.Series(verdict, index=features.index, name="rules_verdict")


__all__ = ["DUPLICATE_NUMBER_SIMILARITY", "DUPLICATE_OVERLAP", "DUPLICATE_SHIPMENT_BILLED",
           "FUEL_TOLERANCE_POINTS", "SPOT_TOLERANCE_SHARE", "TOLERANCE_SHARE", "TOLERANCE_USD",
           "WEIGHT_PRICED_CODES", "rules_only_audit"]
