"""Re-rating and audit features: what each invoice should have cost, and the evidence around it.

``rerate`` prices every invoice again from the contract in force on the shipment date, the fuel index
of the shipment week and the shipment facts, component by component, and compares. ``audit_features``
adds look-back features (duplicates, carrier track record, spot history) and returns one numeric frame
keyed by invoice_id with exactly ``FEATURE_NAMES``. The same functions serve training and the live
audit of one invoice (pass the earlier invoices along for the look-back features).

Expected amounts count only codes billed on *this* invoice, so a split invoice (accessorials billed
separately) is not short of anything; ``shipment_billed_to_expected`` watches the shipment as a whole.
"""

from __future__ import annotations

import pandas as pd

from features.rerating_carrier import carrier_history_features, spot_rate_estimates
from features.rerating_copies import COPY_FEATURES, exact_copy_features
from features.rerating_evidence import (
    ACCESSORIAL_NAMES,
    billed_components,
    evidence_features,
    expected_components,
    facts_context,
)
from features.rerating_history import arrival_order, near_amount_features, same_shipment_features

DELTA_COMPONENTS = ("total", "linehaul", "fuel", "accessorial")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{c}_{k}" for c in DELTA_COMPONENTS for k in ("billed", "expected", "delta", "delta_share")),
    "fuel_pct_billed", "fuel_pct_expected", "fuel_pct_delta",
    "accessorial_excess", "accessorial_unbacked_count", "accessorial_unverifiable_count",
    *(f"{code}_delta" for code in ACCESSORIAL_NAMES),
    "rate_expected", "linehaul_delta_at_billed_weight", "implied_rate_ratio", "linehaul_at_minimum",
    "is_spot", "spot_history_count",
    "contract_days_in_force", "contract_amended",
    "billed_weight_kg", "actual_weight_kg", "dimensional_weight_kg", "chargeable_weight_kg",
    "weight_ratio_billed_chargeable", "weight_ratio_billed_actual", "weight_excess_kg", "dims_missing",
    "facts_missing", "carrier_mismatch", "pod_missing", "pod_present_at_invoice", "invoice_days_after_pod",
    "invoice_days_after_arrival", "invoice_days_after_ship", "invoice_before_arrival",
    "cancelled", "arrival_delay_hours", "dwell_hours", "dwell_missing", "free_hours", "dwell_over_free_hours",
    "storage_days_billed", "storage_days_expected", "storage_days_from_schedule",
    "dangerous_goods", "dangerous_goods_fee_billed", "delivery_attempts", "redelivery_units_billed",
    "services_requested_count", "line_count", "has_linehaul",
    "prior_same_shipment_invoices", "prior_same_shipment_days", "prior_same_shipment_amount_ratio",
    "prior_same_shipment_code_overlap", "prior_same_shipment_number_similarity", "shipment_billed_to_expected",
    "near_amount_match", "near_amount_diff_share", "near_amount_days", "near_amount_same_shipment",
    "near_amount_number_similarity", *COPY_FEATURES,
    "carrier_prior_invoices", "lane_prior_invoices", "carrier_resolved_invoices", "carrier_prior_dispute_rate",
)
"""Every column of ``audit_features``, in order; all float64, NaN where the evidence is missing."""


KNOWN_CONTEXT = ("origin", "destination", "scheduled_departure", "is_spot", "chargeable_weight_kg")
"""What the look-back features need to know of an *earlier* invoice besides the invoice itself: its lane,
its shipment's departure, whether it was a spot shipment and its chargeable weight. The service keeps
these per invoice it has seen (it had the reference data then), so it need not look up every earlier
invoice's shipment and contract again; see ``audit_features(known=...)``."""


def _apply_known(frame: pd.DataFrame, known: pd.DataFrame | None) -> pd.DataFrame:
    if known is None or known.empty:
        return frame
    rows = frame["invoice_id"].isin(known.index).to_numpy()
    ids = frame.loc[rows, "invoice_id"]
    for column in KNOWN_CONTEXT:
        # merged as objects, then typed once: setting rows of a typed column in place refuses a value of
        # another dtype from pandas 3 on (an unknown shipment's None into float64, an all-NaT array of
        # tz-aware values, which numpy holds as objects, into datetime64[ns, UTC])
        merged = frame[column].to_numpy(dtype=object, copy=True)
        merged[rows] = ids.map(known[column]).to_numpy(dtype=object)
        values = pd.Series(merged, index=frame.index)
        if column == "scheduled_departure":
            values = pd.to_datetime(values, utc=True)
        elif column == "chargeable_weight_kg":
            values = values.astype(float)
        elif column == "is_spot":
            values = values.where(~rows, values.astype(bool)).infer_objects()
        frame[column] = values
    return frame


def rerate(invoices: pd.DataFrame, lines: pd.DataFrame, *, facts: pd.DataFrame, contracts: pd.DataFrame,
           fuel_index: pd.DataFrame, known: pd.DataFrame | None = None) -> pd.DataFrame:
    """Billed vs expected per component and the evidence, one row per invoice (positional index).

    Spot shipments are re-rated with rates estimated from earlier spot invoices, so the receipt order of
    ``invoices`` matters (column ``order``). ``known`` (index invoice_id, columns ``KNOWN_CONTEXT``)
    supplies the context of invoices whose facts and contracts are not passed.
    """
    frame = invoices.reset_index(drop=True).copy()
    frame["order"] = arrival_order(frame).to_numpy()
    frame["when"] = frame["received_at"].fillna(frame["invoice_date"])
    billed = billed_components(lines).reindex(frame["invoice_id"], fill_value=0.0)
    frame = pd.concat([frame, billed.reset_index(drop=True)], axis=1)
    frame = facts_context(frame, facts=facts, contracts=contracts, fuel_index=fuel_index)
    frame = _apply_known(frame, known)
    frame = pd.concat([frame, spot_rate_estimates(frame)], axis=1)
    return expected_components(frame, contracts)


def _delta(frame: pd.DataFrame, name: str) -> None:
    billed, expected = frame[f"{name}_billed"], frame[f"{name}_expected"]
    frame[f"{name}_delta"] = billed - expected
    frame[f"{name}_delta_share"] = (billed - expected) / expected.where(expected > 0)


def _shipment_to_date(frame: pd.DataFrame) -> pd.Series:
    """Billed so far on the shipment (this and earlier invoices) over its full expected cost."""
    ordered = frame.sort_values("order")
    so_far = ordered.groupby(["carrier", "shipment_id"])["total_billed"].cumsum().reindex(frame.index)
    expected = frame["shipment_expected_total"]
    return so_far / expected.where(expected > 0)


def audit_features(invoices: pd.DataFrame, lines: pd.DataFrame, *, facts: pd.DataFrame,
                   contracts: pd.DataFrame, fuel_index: pd.DataFrame,
                   outcomes: pd.Series | None = None, known: pd.DataFrame | None = None) -> pd.DataFrame:
    """The numeric audit feature frame: index ``invoice_id``, columns ``FEATURE_NAMES``, float64.

    ``known`` carries the ``KNOWN_CONTEXT`` of earlier invoices whose reference data is not in
    ``facts``/``contracts`` (the service's invoices seen); their own rows are not meaningful then, only
    what they contribute to the look-back features of the others.

    ``outcomes`` (invoice_id -> disputed?) feeds the carrier's prior dispute rate; only verdicts known
    before an invoice arrived are used.
    """
    frame = rerate(invoices, lines, facts=facts, contracts=contracts, fuel_index=fuel_index, known=known)
    for name in DELTA_COMPONENTS:
        _delta(frame, name)
    frame = pd.concat([frame, evidence_features(frame)], axis=1)
    frame["shipment_billed_to_expected"] = _shipment_to_date(frame)
    slim = frame[["invoice_id", "shipment_id", "carrier", "origin", "destination", "invoice_date", "when",
                  "order"]].assign(total=frame["total_billed"], departure=frame["scheduled_departure"])
    history = [same_shipment_features(slim, lines), near_amount_features(slim),
               exact_copy_features(slim, lines),
               carrier_history_features(slim, outcomes)]
    frame = pd.concat([frame, *history], axis=1)
    out = frame.set_index("invoice_id")[list(FEATURE_NAMES)]
    return out.astype(float)


__all__ = ["DELTA_COMPONENTS", "FEATURE_NAMES", "KNOWN_CONTEXT", "audit_features", "rerate"]
