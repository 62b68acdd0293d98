"""Features that look back at earlier invoices: duplicates, carrier track record, spot-rate history.

"Earlier" is the order invoices were received (``received_at``, else the invoice date; ties broken by
invoice number). Every feature of an invoice is computed from strictly earlier invoices only, so the
same function gives the same answer online (when later invoices do not exist yet) and in training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.rerating_similarity import number_similarity

NEAR_AMOUNT_SHARE = 0.02
NEAR_AMOUNT_DAYS = 30
_LANE = ["carrier", "origin", "destination"]
_DAY = pd.Timedelta(days=1)


def arrival_order(invoices: pd.DataFrame) -> pd.Series:
    """Position of each invoice in receipt order (0 = first received)."""
    when = invoices["received_at"].fillna(invoices["invoice_date"])
    frame = pd.DataFrame({"when": when, "id": invoices["invoice_id"]})
    ranked = frame.sort_values(["when", "id"], kind="stable").index
    order = pd.Series(np.arange(len(invoices)), index=ranked)
    return order.reindex(invoices.index).rename("order")


def _previous(frame: pd.DataFrame, by: list[str], *, columns: list[str]) -> pd.DataFrame:
    """For each row, ``columns`` of the latest strictly earlier row with the same ``by`` values."""
    right = frame[[*by, "order", *columns]].rename(columns={c: f"prior_{c}" for c in columns})
    right["prior_order"] = right["order"]
    merged = pd.merge_asof(frame[[*by, "order"]].reset_index(names="_row").sort_values("order"),
                           right.sort_values("order"), on="order", by=by, direction="backward",
                           allow_exact_matches=False)
    return merged.set_index("_row").reindex(frame.index)


def same_shipment_features(frame: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Earlier invoices of the same carrier for the same shipment, and how much of this one they cover."""
    keys = ["carrier", "shipment_id"]
    prior = _previous(frame, keys, columns=["invoice_id", "invoice_date", "total"])
    count = frame.sort_values("order").groupby(keys).cumcount().reindex(frame.index)
    lined = lines.merge(frame[["invoice_id", *keys, "order"]], on="invoice_id", how="inner")
    first = lined.groupby([*keys, "code"])["order"].transform("min")
    repeated = lined["amount"].where(first < lined["order"], 0.0).groupby(lined["invoice_id"]).sum()
    overlap = frame["invoice_id"].map(repeated).fillna(0.0) / frame["total"].where(frame["total"] > 0)
    return pd.DataFrame({
        "prior_same_shipment_invoices": count.astype(float),
        "prior_same_shipment_days": (frame["invoice_date"] - prior["prior_invoice_date"]) / _DAY,
        "prior_same_shipment_amount_ratio": frame["total"] / prior["prior_total"],
        "prior_same_shipment_code_overlap": overlap.fillna(0.0),
        "prior_same_shipment_number_similarity": number_similarity(frame["invoice_id"],
                                                                   prior["prior_invoice_id"]),
    }, index=frame.index)


def near_amount_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The closest-in-amount earlier invoice on the same carrier and lane within 30 days (within 2 %)."""
    bucket = np.floor(np.log(frame["total"].clip(lower=0.01)) / np.log1p(NEAR_AMOUNT_SHARE)).astype(int)
    base = frame.assign(bucket=bucket)
    positive = frame["total"].where(frame["total"] > 0)
    best_diff = np.full(len(frame), np.inf)
    best_days = np.full(len(frame), np.nan)
    best_id = pd.Series(pd.NA, index=frame.index, dtype="string")
    best_shipment = pd.Series(pd.NA, index=frame.index, dtype="string")
    for offset in (-1, 0, 1):  # the candidate's amount bucket is one below, the same, or one above
        prior = _merge_bucket(base, base.assign(bucket=base["bucket"] - offset))
        diff = ((frame["total"] - prior["prior_total"]).abs() / positive).to_numpy()
        days = ((frame["invoice_date"] - prior["prior_invoice_date"]) / _DAY).to_numpy()
        ok = (diff <= NEAR_AMOUNT_SHARE) & (days <= NEAR_AMOUNT_DAYS) & (diff < best_diff)
        best_diff[ok], best_days[ok] = diff[ok], days[ok]
        best_id[ok] = prior.loc[ok, "prior_invoice_id"].astype("string")
        best_shipment[ok] = prior.loc[ok, "prior_shipment_id"].astype("string")
    found = np.isfinite(best_diff)
    return pd.DataFrame({
        "near_amount_match": found.astype(float),
        "near_amount_diff_share": np.where(found, best_diff, np.nan),
        "near_amount_days": best_days,
        "near_amount_same_shipment": np.where(found, (best_shipment == frame["shipment_id"]).fillna(False),
                                              np.nan),
        "near_amount_number_similarity": number_similarity(frame["invoice_id"], best_id),
    }, index=frame.index)


def _merge_bucket(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    by = [*_LANE, "bucket"]
    cols = ["invoice_id", "invoice_date", "total", "shipment_id"]
    right = right[[*by, "order", *cols]].rename(columns={c: f"prior_{c}" for c in cols})
    merged = pd.merge_asof(left[[*by, "order"]].reset_index(names="_row").sort_values("order"),
                           right.sort_values("order"), on="order", by=by, direction="backward",
                           allow_exact_matches=False)
    return merged.set_index("_row").reindex(left.index)


__all__ = ["NEAR_AMOUNT_DAYS", "NEAR_AMOUNT_SHARE", "arrival_order", "near_amount_features",
           "same_shipment_features"]
