"""Exact-copy duplicate candidates: an earlier invoice of the same carrier and lane with the same lines.

A clerk who re-bills an invoice under the wrong air waybill copies its lines — codes and amounts to the
cent — onto a neighbouring shipment of the same lane. When the copied bill is a small separate
accessorial bill (one storage day, one re-delivery), its amount alone also matches genuine bills of
other shipments (day rates are identical on a lane), so near-amount features cannot tell them apart.
What does tell them apart is *which* shipment the earlier identical bill was for: a copy sits on a
shipment that departed within hours of the original's, a coincidence on any shipment of the lane.

Only strictly earlier invoices (receipt order, column ``order``) are candidates, so a row never depends
on invoices received after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.live import to_ns

COPY_WINDOW_DAYS = 60
"""How far back (invoice dates) an identical bill counts: re-issued duplicates arrive up to ~6 weeks later."""
_LANE = ["carrier", "origin", "destination"]
_DAY, _HOUR = pd.Timedelta(days=1), pd.Timedelta(hours=1)
COPY_FEATURES = ("exact_copy_count", "exact_copy_days", "exact_copy_same_shipment",
                 "exact_copy_departure_gap_hours", "exact_copy_shipments_between", "exact_copy_accessorial_only")


def line_signature(lines: pd.DataFrame) -> pd.Series:
    """Per invoice_id, its line multiset as text: ``code:cents`` sorted, e.g. ``fuel:4050|linehaul:30000``."""
    cents = (lines["amount"].astype(float) * 100).round().astype("int64").astype(str)
    items = (lines["code"].astype(str) + ":" + cents).rename("item")
    ordered = pd.DataFrame({"invoice_id": lines["invoice_id"], "item": items}).sort_values(["invoice_id", "item"])
    return ordered.groupby("invoice_id", sort=False)["item"].agg("|".join).rename("signature")


def _copy_pairs(frame: pd.DataFrame, signature: pd.Series) -> pd.DataFrame:
    """Every (invoice, strictly earlier identical invoice on its lane within the window) pair."""
    base = frame[[*_LANE, "invoice_id", "shipment_id", "invoice_date", "order", "departure"]].copy()
    base["signature"] = signature
    base = base[base["signature"] != ""].reset_index(names="_row")
    pairs = base.merge(base.drop(columns="invoice_id"), on=[*_LANE, "signature"], suffixes=("", "_prior"))
    pairs = pairs[pairs["order_prior"] < pairs["order"]]
    pairs["days"] = (pairs["invoice_date"] - pairs["invoice_date_prior"]) / _DAY
    return pairs[pairs["days"].abs() <= COPY_WINDOW_DAYS]


def exact_copy_features(frame: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Identical earlier bills on the lane: how many, and the candidate original among them.

    ``frame`` needs ``invoice_id, shipment_id, carrier, origin, destination, invoice_date, order`` and
    ``departure`` (the shipment's scheduled departure; NaT when its facts are missing).
    The candidate original is the identical bill whose shipment departed nearest to this one's:
    ``exact_copy_departure_gap_hours`` (0 for the same shipment; NaN without a copy), whether it is the
    same shipment, and ``exact_copy_days`` between its invoice date and this one's. Bills of shipments
    that left together are sent together; a copy comes days or weeks after its original.
    """
    signature = frame["invoice_id"].map(line_signature(lines)).fillna("")
    pairs = _copy_pairs(frame, signature)
    pairs["gap"] = (pairs["departure"] - pairs["departure_prior"]).abs() / _HOUR
    pairs.loc[pairs["shipment_id"] == pairs["shipment_id_prior"], "gap"] = 0.0
    pairs["same"] = (pairs["shipment_id"] == pairs["shipment_id_prior"]).astype(float)
    count = pairs.groupby("_row").size().reindex(frame.index, fill_value=0).to_numpy(float)
    # the candidate original: the identical bill whose shipment departed nearest this one (then latest)
    nearest = pairs.sort_values(["_row", "gap", "days", "order_prior"]).drop_duplicates("_row")
    nearest = nearest.set_index("_row")

    def per_row(column: str) -> np.ndarray:
        return nearest[column].reindex(frame.index).to_numpy(float)

    accessorial_only = ~signature.str.contains("linehaul:", regex=False).to_numpy()
    between = _shipments_between(frame, nearest).reindex(frame.index).to_numpy(float)
    return pd.DataFrame({
        "exact_copy_count": count,
        "exact_copy_days": per_row("days"),
        "exact_copy_same_shipment": per_row("same"),
        "exact_copy_departure_gap_hours": per_row("gap"),
        "exact_copy_shipments_between": between,
        "exact_copy_accessorial_only": np.where(count > 0, accessorial_only.astype(float), np.nan),
    }, index=frame.index)


def _shipments_between(frame: pd.DataFrame, nearest: pd.DataFrame) -> pd.Series:
    """Per row with a candidate original: how many other shipments of its carrier lane, billed on
    invoices received before this one, departed strictly between this shipment and the original's.

    0 means the original's shipment is this one's neighbour (or this very shipment) in the lane's departure order — where a
    clerk's slip of the air waybill lands. The gap in hours cannot say that: two flights a day on one
    lane and one a week on another. Only earlier invoices count (receipt ``order``), as everywhere here.
    """
    out = pd.Series(np.where(nearest["same"] == 1.0, 0.0, np.nan), index=nearest.index)
    todo = nearest[nearest["same"] == 0.0].dropna(subset=["departure", "departure_prior"])
    if todo.empty:
        return out
    seen = frame[[*_LANE, "shipment_id", "departure", "order"]].dropna(subset=["departure"])
    seen = seen.assign(stamp=to_ns(seen["departure"])).sort_values("stamp", kind="stable")
    lanes = {key: (group["stamp"].to_numpy(), group["order"].to_numpy(), group["shipment_id"].to_numpy())
             for key, group in seen.groupby(_LANE, sort=False)}
    low, high = np.minimum(to_ns(todo["departure"]), to_ns(todo["departure_prior"])), \
        np.maximum(to_ns(todo["departure"]), to_ns(todo["departure_prior"]))
    for i, (row, pair) in enumerate(todo.iterrows()):
        stamps, orders, shipments = lanes[(pair["carrier"], pair["origin"], pair["destination"])]
        part = slice(np.searchsorted(stamps, low[i], side="right"), np.searchsorted(stamps, high[i], side="left"))
        inside = shipments[part][orders[part] < pair["order"]]
        out[row] = float(len(set(inside) - {pair["shipment_id"], pair["shipment_id_prior"]}))
    return out


__all__ = ["COPY_FEATURES", "COPY_WINDOW_DAYS", "exact_copy_features", "line_signature"]
