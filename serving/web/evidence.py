"""The evidence on a case page, read from what the decision recorded and what the database knows.

Invoice lines beside the re-rated expected charges come from the decision itself: the request holds the
lines as billed, and the stored audit features (``features.rerating.FEATURE_NAMES``: ``linehaul_expected``,
``fuel_expected``, ``<code>_delta`` ...) hold what re-rating against the contract, the fuel index and the
shipment facts found at decision time. Nothing is re-priced here, so the page shows exactly what the
model saw. Shipment facts come from the movements and events orchestrators pushed, and (for invoices)
from the reference shipment facts in the online store when it can be reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from serving.db import events, movements
from serving.web.phrases import FEATURES, feature_label, feature_value, label_of, when

CENT = 0.005
BASIS_FEATURES = ("rate_expected", "chargeable_weight_kg", "billed_weight_kg", "fuel_pct_expected",
                  "fuel_pct_billed", "is_spot", "contract_days_in_force", "contract_amended",
                  "accessorial_unverifiable_count")
FACT_FEATURES = ("arrival_delay_hours", "cancelled", "pod_missing", "pod_present_at_invoice",
                 "invoice_days_after_pod", "invoice_days_after_arrival", "invoice_before_arrival",
                 "dwell_over_free_hours", "free_hours", "delivery_attempts", "dangerous_goods",
                 "services_requested_count")
REFERENCE_FACTS = ("ship_date", "scheduled_departure", "actual_departure", "scheduled_arrival",
                   "actual_arrival", "proof_of_delivery_at", "consignee_pickup_at", "dwell_hours",
                   "delivery_attempts", "requested_services", "dangerous_goods", "cancelled",
                   "actual_weight_kg", "pieces")


@dataclass(frozen=True)
class ChargeRow:
    code: str
    label: str
    billed: float
    expected: float | None
    quantity: float | None = None
    note: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.expected is None else self.billed - self.expected

    @property
    def flagged(self) -> bool:
        """Billed differs from expected by a cent or more (or cannot be checked at all)."""
        return self.difference is None or abs(self.difference) >= CENT


@dataclass(frozen=True)
class ChargeTable:
    rows: list[ChargeRow]
    total: ChargeRow
    basis: list[tuple[str, str]] = field(default_factory=list)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _billed_by_code(lines: list[dict]) -> dict[str, tuple[float, float | None]]:
    out: dict[str, tuple[float, float | None]] = {}
    for line in lines:
        code = str(line.get("code", "")).lower()
        amount, qty = float(line.get("amount") or 0.0), _num(line.get("quantity"))
        before, before_qty = out.get(code, (0.0, None))
        out[code] = (before + amount, qty if before_qty is None else before_qty + (qty or 0.0))
    return out


def _expected(code: str, billed: float, features: dict) -> tuple[float | None, str]:
    if code in ("linehaul", "fuel"):
        expected = _num(features.get(f"{code}_expected"))
        basis = "contract rate × chargeable quantity" if code == "linehaul" else "fuel index % of linehaul"
        return expected, basis if expected is not None else "no contract rate or fuel index for this shipment"
    delta = _num(features.get(f"{code}_delta"))
    if delta is None:
        return None, "cannot be checked: the shipment facts do not say"
    return billed - delta, "contract accessorial price for the recorded service"


def charge_table(request: dict, features: dict) -> ChargeTable | None:
    """Billed vs re-rated expected per charge code, or None when the decision recorded no re-rating."""
    lines = request.get("lines") or []
    if not lines or _num(features.get("total_expected")) is None and _num(features.get("total_billed")) is None:
        return None
    billed = _billed_by_code(lines)
    order = sorted(billed, key=lambda c: (c != "linehaul", c != "fuel"))
    rows = []
    for code in order:
        amount, qty = billed[code]
        expected, note = _expected(code, amount, features)
        rows.append(ChargeRow(code, label_of(code), amount, expected, qty, note))
    total_billed = sum(r.billed for r in rows)
    unchecked = [r.label.lower() for r in rows if r.expected is None]
    total_expected = sum(r.billed if r.expected is None else r.expected for r in rows)
    if unchecked and any(r.code in ("linehaul", "fuel") for r in rows if r.expected is None):
        total_expected = None  # without the linehaul or fuel there is no meaningful expected total
    note = f"{', '.join(unchecked)} counted as billed (cannot be checked)" if unchecked else ""
    total = ChargeRow("total", "Total", total_billed, total_expected, note=note)
    basis = [(feature_label(n), feature_value(n, features.get(n))) for n in BASIS_FEATURES if n in features]
    return ChargeTable(rows, total, basis)


MISSING = "not reported yet"


def recorded_facts(features: dict) -> list[tuple[str, str, str]]:
    """The shipment facts the decision's features carry: (key, words, value)."""
    return [(n, feature_label(n), feature_value(n, features[n])) for n in FACT_FEATURES if n in features]


def merge_facts(*sources: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """One list of (words, value) without repeats: a fact shows once, with the first value that is known."""
    merged: dict[str, tuple[str, str]] = {}
    for source in sources:
        for key, words, value in source:
            if key not in merged or merged[key][1] in (MISSING, "unknown", "—"):
                merged[key] = (merged.get(key, (words,))[0], value)
    return list(merged.values())


MOVEMENT_TIMES = (("scheduled_departure", "Scheduled departure"), ("actual_departure", "Actual departure"),
                  ("scheduled_arrival", "Scheduled arrival"), ("actual_arrival", "Actual arrival"))


def movement_and_events(engine: Engine, shipment_id: str, request: dict | None = None
                        ) -> tuple[list[tuple[str, str]], list[dict]]:
    """The shipment's scheduled and actual times (in words) and its pushed events, oldest first.

    Scheduled times come from the decision's request when it has them: it keeps their UTC offset, which
    a SQLite ``movements`` row does not (see docs/review-ui.md).
    """
    with engine.connect() as conn:
        moved = conn.execute(select(movements).where(movements.c.shipment_id == shipment_id)).mappings().first()
        seen = conn.execute(select(events.c.type, events.c.occurred_at, events.c.payload)
                            .where(events.c.shipment_id == shipment_id)
                            .order_by(events.c.occurred_at)).mappings().all()
    known = {**(dict(moved) if moved else {}), **{k: v for k, v in (request or {}).items()
                                                   if k.startswith("scheduled_") and v}}
    times = [(k, text, when(known[k]) if known.get(k) else MISSING) for k, text in MOVEMENT_TIMES] if known else []
    return times, [_event(dict(e)) for e in seen]


def _event(row: dict) -> dict:
    details = (row.get("payload") or {}).get("details") or {}
    text = ", ".join(f"{label_of(str(k))}: {v}" for k, v in details.items() if v not in (None, ""))
    return {"type": label_of(row["type"]), "occurred_at": when(row["occurred_at"]), "details": text}


def reference_facts(lookup: Callable[[str], dict | None] | None, shipment_id: str) -> tuple[list, str]:
    """Reference shipment facts (departure, arrival, proof of delivery ...) or why there are none."""
    if lookup is None:
        return [], "reference shipment facts are not configured"
    try:
        found = lookup(shipment_id)
    except FactsUnavailable as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001 - the page still shows what the decision recorded
        return [], f"reference shipment facts unavailable ({type(exc).__name__})"
    if not found:
        return [], "no reference shipment facts for this shipment"
    return [(k, *_fact(k, found.get(k))) for k in REFERENCE_FACTS if k in found], ""


def _fact(key: str, value: object) -> tuple[str, str]:
    """(words, value) of one reference fact."""
    words = feature_label(key) if key in FEATURES else label_of(key)
    if isinstance(value, bool | np.bool_):
        return words, "yes" if value else "no"
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return words, "—"
    if key in FEATURES and isinstance(value, int | float | np.number):
        return words, feature_value(key, float(value))
    if isinstance(value, pd.Timestamp):
        dated = key.endswith("_date") or not value.tzinfo
        return words, value.strftime("%Y-%m-%d") if dated else when(value.to_pydatetime())
    return words, str(value).replace(";", ", ")


class FactsUnavailable(Exception):
    """Reference facts cannot be looked up here (the message says why, in words)."""


def feast_facts(runtime) -> Callable[[str], dict | None]:
    """A lookup of one shipment's reference facts through the runtime's online store."""
    def lookup(shipment_id: str) -> dict | None:
        settings = getattr(runtime, "store_settings", None)
        if settings is None:
            raise FactsUnavailable("no feature store is configured for this service")
        if not (settings.data_dir / "registry.db").exists():
            raise FactsUnavailable("the feature store holds no reference data yet (tollgate load)")
        from features.feast_invoice_defs import online_reference

        frame = online_reference(runtime.online_store(), "shipments", [shipment_id])
        return None if frame.empty else frame.iloc[0].to_dict()
    return lookup
