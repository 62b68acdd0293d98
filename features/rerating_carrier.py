"""Look-back features per carrier and lane: track record of disputes, and spot-rate history.

Both use strictly earlier invoices (receipt order, see ``features.rerating_history``). A dispute
verdict only counts once it is known: ``OUTCOME_LAG_DAYS`` after the disputed invoice was received.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.live import to_ns

DISPUTE_PRIOR_RATE = 0.08
DISPUTE_PRIOR_WEIGHT = 20.0
"""Smoothing: a carrier with no resolved invoices is assumed to be disputed 8 % of the time, and that
assumption weighs as much as 20 resolved invoices."""
OUTCOME_LAG_DAYS = 14
RECENT_DAYS = 30
"""Invoice counts per carrier and lane cover the invoices received in the last 30 days: a volume the
service can count from what it has seen, where a count since the first invoice ever would only grow."""
SPOT_MIN_HISTORY = 3
SPOT_HISTORY_DAYS = 60
"""Spot rates are estimated from the spot invoices received in the last 60 days (recent market rates,
and what the service keeps at hand)."""
SPOT_RATE_MIN_KG = 100.0
"""Only shipments well above minimum-charge weight reveal a spot rate per kg."""
_LANE = ["carrier", "origin", "destination"]


def carrier_history_features(frame: pd.DataFrame, outcomes: pd.Series | None) -> pd.DataFrame:
    """Earlier invoices of the carrier and lane, and the carrier's smoothed dispute rate so far.

    ``outcomes`` maps invoice_id to True (disputed) / False (paid as billed); None leaves the rate NaN.
    """
    out = pd.DataFrame({
        "carrier_prior_invoices": _recent_count(frame, ["carrier"]),
        "lane_prior_invoices": _recent_count(frame, _LANE),
    }, index=frame.index)
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


def _recent_count(frame: pd.DataFrame, by: list[str]) -> np.ndarray:
    """Per row: earlier invoices (receipt order) of the same ``by`` group received in the last
    ``RECENT_DAYS`` days before this one."""
    ordered = frame[[*by, "when", "order"]].sort_values("order")
    stamps = to_ns(ordered["when"])
    window = pd.Timedelta(days=RECENT_DAYS).value
    counts = pd.Series(0.0, index=ordered.index)
    for _, rows in ordered.groupby(by, sort=False).indices.items():
        own = stamps[rows]  # receipt order within the group, so non-decreasing
        counts.iloc[rows] = np.arange(len(rows)) - np.searchsorted(own, own - window, side="left")
    return counts.reindex(frame.index).to_numpy(float)


def _windows(ordered: pd.DataFrame, by: list[str], stamps: np.ndarray):
    """(row, earlier rows) position pairs: for each row of ``ordered`` (receipt order), the strictly
    earlier rows of its ``by`` group received within ``SPOT_HISTORY_DAYS`` before it."""
    window = pd.Timedelta(days=SPOT_HISTORY_DAYS).value
    for _, rows in ordered.groupby(by, sort=False).indices.items():
        own = stamps[rows]
        starts = np.searchsorted(own, own - window, side="left")
        for i, row in enumerate(rows):
            yield row, rows[starts[i]:i]


def spot_rate_estimates(frame: pd.DataFrame) -> pd.DataFrame:
    """For spot invoices: rate per kg and minimum charge estimated from earlier spot invoices.

    Only earlier invoices received in the last ``SPOT_HISTORY_DAYS`` that bill the whole shipment count
    (billed weight within 10 % of the chargeable weight: a balance-due bill or a partial bill says
    nothing about the rate). Rate: median linehaul per billed kg on the same carrier and lane, from
    shipments of at least 100 kg, NaN until three are known. Minimum: the lowest such linehaul of the
    carrier in the window (every linehaul is at least the minimum, so this can only overestimate it).
    """
    spot = frame[frame["is_spot"] & (frame["linehaul_billed"] > 0)].sort_values("order")
    kg = spot["billed_weight_kg"].astype(float)
    whole = (kg / spot["chargeable_weight_kg"]).between(0.9, 1.1)
    per_kg = (spot["linehaul_billed"] / kg).where(whole & (kg >= SPOT_RATE_MIN_KG)).to_numpy(float)
    floor = spot["linehaul_billed"].where(whole).to_numpy(float)
    stamps = to_ns(spot["when"])
    rate, seen, minimum = (np.full(len(spot), np.nan) for _ in range(3))
    for rows, earlier in _windows(spot, _LANE, stamps):
        values = per_kg[earlier]
        values = values[~np.isnan(values)]
        seen[rows] = len(values)
        rate[rows] = np.median(values) if len(values) >= SPOT_MIN_HISTORY else np.nan
    for rows, earlier in _windows(spot, ["carrier"], stamps):
        values = floor[earlier]
        minimum[rows] = np.nanmin(values) if np.isfinite(values).any() else np.nan
    out = pd.DataFrame({"spot_rate_estimate": rate, "spot_minimum_estimate": minimum,
                        "spot_history_count": seen}, index=spot.index)
    return out.reindex(frame.index)


__all__ = ["DISPUTE_PRIOR_RATE", "DISPUTE_PRIOR_WEIGHT", "OUTCOME_LAG_DAYS", "RECENT_DAYS", "SPOT_HISTORY_DAYS", "SPOT_MIN_HISTORY",
           "SPOT_RATE_MIN_KG", "carrier_history_features", "spot_rate_estimates"]
