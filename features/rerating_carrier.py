"""Look-back features per carrier and lane: track record of disputes, and spot-rate history.

Both use strictly earlier invoices (receipt order, see ``features.rerating_history``). A dispute
verdict only counts once it is known: ``OUTCOME_LAG_DAYS`` after the disputed invoice was received.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DISPUTE_PRIOR_RATE = 0.08
DISPUTE_PRIOR_WEIGHT = 20.0
"""Smoothing: a carrier with no resolved invoices is assumed to be disputed 8 % of the time, and that
assumption weighs as much as 20 resolved invoices."""
OUTCOME_LAG_DAYS = 14
SPOT_MIN_HISTORY = 3
SPOT_RATE_MIN_KG = 100.0
"""Only shipments well above minimum-charge weight reveal a spot rate per kg."""
_LANE = ["carrier", "origin", "destination"]


def carrier_history_features(frame: pd.DataFrame, outcomes: pd.Series | None) -> pd.DataFrame:
    """Earlier invoices of the carrier and lane, and the carrier's smoothed dispute rate so far.

    ``outcomes`` maps invoice_id to True (disputed) / False (paid as billed); None leaves the rate NaN.
    """
    ordered = frame.sort_values("order")
    out = pd.DataFrame({
        "carrier_prior_invoices": ordered.groupby("carrier").cumcount().astype(float),
        "lane_prior_invoices": ordered.groupby(_LANE).cumcount().astype(float),
    }).reindex(frame.index)
    out["carrier_prior_dispute_rate"] = np.nan
    out["carrier_resolved_invoices"] = np.nan
    if outcomes is None:
        return out
    disputed = frame["invoice_id"].map(outcomes).astype(float)
    known = pd.DataFrame({"carrier": frame["carrier"], "disputed": disputed,
                          "known_at": frame["when"] + pd.Timedelta(days=OUTCOME_LAG_DAYS)}).dropna()
    known = known.sort_values("known_at", kind="stable")
    known["resolved"] = known.groupby("carrier").cumcount() + 1.0
    known["disputes"] = known.groupby("carrier")["disputed"].cumsum()
    merged = pd.merge_asof(frame[["carrier", "when"]].reset_index(names="_row").sort_values("when"),
                           known[["carrier", "known_at", "resolved", "disputes"]], left_on="when",
                           right_on="known_at", by="carrier", direction="backward")
    merged = merged.set_index("_row").reindex(frame.index).fillna({"resolved": 0.0, "disputes": 0.0})
    out["carrier_resolved_invoices"] = merged["resolved"]
    out["carrier_prior_dispute_rate"] = ((merged["disputes"] + DISPUTE_PRIOR_WEIGHT * DISPUTE_PRIOR_RATE)
                                         / (merged["resolved"] + DISPUTE_PRIOR_WEIGHT))
    return out


def spot_rate_estimates(frame: pd.DataFrame) -> pd.DataFrame:
    """For spot invoices: rate per kg and minimum charge estimated from earlier spot invoices.

    Only earlier invoices that bill the whole shipment count (billed weight within 10 % of the
    chargeable weight: a balance-due bill or a partial bill says nothing about the rate). Rate: median
    linehaul per billed kg on the same carrier and lane, from shipments of at least 100 kg, NaN until
    three are known. Minimum: the lowest such linehaul of the carrier so far (every linehaul is at least
    the minimum, so this can only overestimate it).
    """
    spot = frame[frame["is_spot"] & (frame["linehaul_billed"] > 0)].sort_values("order")
    kg = spot["billed_weight_kg"].astype(float)
    whole = (kg / spot["chargeable_weight_kg"]).between(0.9, 1.1)
    per_kg = (spot["linehaul_billed"] / kg).where(whole & (kg >= SPOT_RATE_MIN_KG))
    lane = spot["carrier"] + "|" + spot["origin"] + "|" + spot["destination"]
    prior = per_kg.groupby(lane).shift()
    rate = prior.groupby(lane).transform(lambda s: s.expanding().median())
    seen = prior.notna().astype(float).groupby(lane).cumsum()
    floor = spot["linehaul_billed"].where(whole).groupby(spot["carrier"]).shift()
    minimum = floor.groupby(spot["carrier"]).cummin()
    out = pd.DataFrame({"spot_rate_estimate": rate.where(seen >= SPOT_MIN_HISTORY),
                        "spot_minimum_estimate": minimum, "spot_history_count": seen})
    return out.reindex(frame.index)


__all__ = ["DISPUTE_PRIOR_RATE", "DISPUTE_PRIOR_WEIGHT", "OUTCOME_LAG_DAYS", "SPOT_MIN_HISTORY",
           "SPOT_RATE_MIN_KG", "carrier_history_features", "spot_rate_estimates"]
