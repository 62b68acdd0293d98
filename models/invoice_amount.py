"""Dollars at risk per invoice: what each possible verdict would let the carrier overbill.

For every class the re-rating deltas already say how many dollars that problem would put on this
invoice (a fuel error costs the fuel delta, a duplicate the whole invoice). The amount at risk is the
expectation over the calibrated class probabilities: ``sum_k P(k) * amount_k`` — the dollars a payer
expects to recover by disputing, which is what a review queue should be sorted by. Nothing here is
learned: a reviewer can check every figure against the re-rating, and it cannot drift from it.

Only column names of the audit feature frame are used (no import of ``features``), so a pickled model
loads wherever ``models/`` does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CLEAN = "clean"
WHOLE_INVOICE = ("duplicate", "billed_before_delivery")
"""Paying these at all is the loss: the whole invoice total is at risk."""


AMOUNT_COLUMNS = ("total_billed", "total_delta", "fuel_pct_billed", "linehaul_delta_at_billed_weight",
                  "fuel_delta", "accessorial_delta", "linehaul_delta", "security_delta")
"""Audit feature columns the amounts are computed from."""


def _positive(*columns: np.ndarray) -> np.ndarray:
    """Sum of the columns (missing counts as 0), floored at 0; NaN when every column is missing."""
    stacked = np.column_stack(columns)
    total = np.clip(np.nansum(stacked, axis=1), 0.0, None)
    return np.where(np.isnan(stacked).all(axis=1), np.nan, total)


def _component_amounts(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per component class: the re-rating delta that class's problem inflates (docs/invoice-model.md).

    A rate overcharge also inflates the fuel surcharge billed on top of the linehaul.
    """
    fuel_share = 1.0 + np.clip(np.nan_to_num(c["fuel_pct_billed"]), 0.0, None) / 100.0
    return {
        "rate_overcharge": _positive(c["linehaul_delta_at_billed_weight"]) * fuel_share,
        "fuel_surcharge_error": _positive(c["fuel_delta"]),
        "unbacked_accessorial": _positive(c["accessorial_delta"]),
        "weight_overbilled": _positive(c["linehaul_delta"], c["fuel_delta"], c["security_delta"]),
    }


def class_amounts(features: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Dollars each class would put at risk on each invoice (rows as ``features``, columns ``classes``).

    A component whose expectation is unknown (spot lane without history) falls back to the overall
    positive delta, and to 0 when even that is unknown. Plain numpy: this runs per invoice in serving.
    """
    values = features[list(AMOUNT_COLUMNS)].to_numpy(dtype=float)
    cols = {name: values[:, k] for k, name in enumerate(AMOUNT_COLUMNS)}
    fallback = np.nan_to_num(_positive(cols["total_delta"]))
    components = _component_amounts(cols)
    out = np.zeros((len(features), len(classes)))
    for k, name in enumerate(classes):
        if name in WHOLE_INVOICE:
            out[:, k] = np.nan_to_num(cols["total_billed"])
        elif name in components:
            out[:, k] = np.where(np.isnan(components[name]), fallback, components[name])
    return pd.DataFrame(out, index=features.index, columns=list(classes))


def expected_amount(proba: np.ndarray, amounts: pd.DataFrame) -> np.ndarray:
    """``sum_k P(k) * amount_k`` per row, in dollars (rounded to the cent)."""
    return np.round((np.asarray(proba, dtype=float) * amounts.to_numpy(dtype=float)).sum(axis=1), 2)
