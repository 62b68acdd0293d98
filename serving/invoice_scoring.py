"""Scoring a carrier invoice at arrival: reference data from Feast, earlier invoices from the database,
the same re-rating and audit features as training, the champion discrepancy model.

Duplicate and carrier-history features need the invoices that arrived before this one: the service
keeps every invoice it has seen (``invoices_seen``), with the context the look-back features need of it
(lane, departure, spot or not, chargeable weight: ``features.rerating.KNOWN_CONTEXT``), and passes the
carrier's invoices of the longest look-back window (``LOOKBACK``) with the new
invoice through :func:`features.rerating.audit_features`, which only ever looks backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from features.errors import FeaturesUnavailable
from features.feast_invoice_defs import contract_lane_key, fuel_week_key, online_reference
from features.reference import MODE_FUEL_KIND
from features.rerating import KNOWN_CONTEXT, audit_features
from features.rerating_carrier import RECENT_DAYS, SPOT_HISTORY_DAYS
from features.rerating_copies import COPY_WINDOW_DAYS
from features.rerating_history import NEAR_AMOUNT_DAYS
from serving.db import invoices_seen
from serving.scoring import LoadedModel

LOOKBACK = timedelta(days=max(COPY_WINDOW_DAYS, NEAR_AMOUNT_DAYS, RECENT_DAYS, SPOT_HISTORY_DAYS))
"""Every look-back feature counts only invoices received within its own window, so the carrier's invoices
of the longest window give the service exactly the values training computed from the whole history
(tests/serving/test_invoice_parity.py)."""


@dataclass
class InvoiceScores:
    scores: dict | None
    reasons: list[dict]
    features: dict
    shipment_known: bool
    contract_known: bool
    lane: str | None = None
    context: dict | None = None
    """This invoice's ``KNOWN_CONTEXT``, kept with it for later invoices' look-back features."""


def _utc(value) -> datetime:
    """A stored instant: timezone-aware values converted to UTC, naive ones (calendar days) read as UTC."""
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")).to_pydatetime()


def _number(value) -> float | None:
    return None if pd.isna(value) else float(value)


def _frames(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    invoices = pd.DataFrame([{k: r[k] for k in ("invoice_id", "carrier", "shipment_id", "invoice_date",
                                                  "received_at", "total", "billed_weight_kg")} for r in rows])
    invoices["mode"], invoices["currency"] = "air", "USD"
    for col in ("invoice_date", "received_at"):
        invoices[col] = pd.to_datetime(invoices[col], utc=True)
    lines = pd.DataFrame([{"invoice_id": r["invoice_id"], "line_no": i + 1, **line}
                          for r in rows for i, line in enumerate(r["lines"])])
    lines["quantity"] = lines.get("quantity", pd.Series(dtype=float)).astype(float)
    return invoices, lines


def seen_rows(invoices: pd.DataFrame, lines: pd.DataFrame, context: pd.DataFrame) -> list[dict]:
    """``invoices_seen`` rows for invoices scored elsewhere (a replay's history, a test's): ``context`` is
    :func:`features.rerating.rerate`'s frame (index invoice_id), which holds their ``KNOWN_CONTEXT``."""
    by_invoice = dict(tuple(lines.groupby("invoice_id")))
    rows = []
    for head in invoices.itertuples(index=False):
        own = by_invoice.get(head.invoice_id, lines.iloc[:0])
        known = context.loc[head.invoice_id]
        rows.append({
            "invoice_id": head.invoice_id, "carrier": head.carrier, "shipment_id": head.shipment_id,
            "invoice_date": _utc(head.invoice_date),
            "received_at": _utc(head.invoice_date if pd.isna(head.received_at) else head.received_at),
            "total": float(head.total), "billed_weight_kg": _number(head.billed_weight_kg),
            "lines": [{"code": c, "amount": float(a)} | ({} if pd.isna(q) else {"quantity": float(q)})
                      for c, a, q in zip(own["code"], own["amount"], own["quantity"])],
            "origin": known["origin"], "destination": known["destination"],
            "scheduled_departure": None if pd.isna(known["scheduled_departure"])
            else _utc(known["scheduled_departure"]),
            "is_spot": bool(known["is_spot"]), "chargeable_weight_kg": _number(known["chargeable_weight_kg"]),
        })
    return rows


class InvoiceScorer:
    """Scores invoices with the champion ``invoice_discrepancy`` model."""

    def __init__(self, model: LoadedModel, store, engine: Engine) -> None:
        self.model, self.store, self.engine = model, store, engine

    def references(self, shipment_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        try:
            facts = online_reference(self.store, "shipments", [shipment_id])
            if facts.empty:
                return facts, pd.DataFrame(), pd.DataFrame()
            fact = facts.iloc[0]
            contracts = online_reference(self.store, "contracts", [contract_lane_key(fact)])
            week = (pd.Timestamp(fact["ship_date"]) - pd.Timedelta(days=pd.Timestamp(fact["ship_date"]).weekday()))
            fuel = online_reference(self.store, "fuel-index", [fuel_week_key(MODE_FUEL_KIND[fact["mode"]].value,
                                                                              week.normalize())])
        except Exception as exc:  # noqa: BLE001 - any online-store failure means no reference data
            raise FeaturesUnavailable(f"reference data unavailable: {exc}") from exc
        return facts, contracts, fuel

    def earlier(self, invoice: dict, *, origin: str | None = None, destination: str | None = None) -> list[dict]:
        """The carrier's invoices received before this one, within ``LOOKBACK`` of it, that can move its
        look-back features: the same lane, the same shipment, or spot shipments (the carrier's spot
        minimum). The carrier's volume, the one carrier-wide count, is :meth:`carrier_volume`."""
        received = _utc(invoice.get("received_at") or invoice["invoice_date"])
        since = min(received, _utc(invoice["invoice_date"])) - LOOKBACK
        seen = invoices_seen.c
        relevant = or_(and_(seen.origin == origin, seen.destination == destination),
                       seen.shipment_id == invoice["shipment_id"], seen.is_spot.is_(True))
        query = select(invoices_seen).where(seen.carrier == invoice["carrier"], seen.received_at >= since,
                                            seen.received_at <= received, seen.invoice_id != invoice["invoice_id"],
                                            relevant)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def carrier_volume(self, invoice: dict) -> float:
        """``carrier_prior_invoices`` as training counts it: the carrier's invoices received in the
        ``RECENT_DAYS`` before this one, earlier in receipt order (time, then invoice id)."""
        received = _utc(invoice.get("received_at") or invoice["invoice_date"])
        seen = invoices_seen.c
        before = or_(seen.received_at < received,
                     and_(seen.received_at == received, seen.invoice_id < invoice["invoice_id"]))
        query = select(func.count()).where(seen.carrier == invoice["carrier"],
                                           seen.received_at >= received - timedelta(days=RECENT_DAYS), before)
        with self.engine.connect() as conn:
            return float(conn.execute(query).scalar_one())

    @staticmethod
    def _known(rows: list[dict]) -> pd.DataFrame:
        known = pd.DataFrame([{"invoice_id": r["invoice_id"], **{c: r.get(c) for c in KNOWN_CONTEXT}}
                              for r in rows], columns=["invoice_id", *KNOWN_CONTEXT])
        return known.set_index("invoice_id")

    def score(self, invoice: dict) -> InvoiceScores:
        facts, contracts, fuel = self.references(invoice["shipment_id"])
        if facts.empty:
            return InvoiceScores(None, [], {}, shipment_known=False, contract_known=False)
        ship_date = pd.Timestamp(facts.iloc[0]["ship_date"])
        in_force = (not contracts.empty) and bool(((contracts["effective_from"] <= ship_date)
                                                   & (contracts["effective_to"] >= ship_date)).any())
        fact = facts.iloc[0]
        earlier = self.earlier(invoice, origin=fact["origin"], destination=fact["destination"])
        invoices, lines = _frames([*earlier, invoice])
        features = audit_features(invoices, lines, facts=facts, contracts=contracts, fuel_index=fuel,
                                  known=self._known(earlier))
        row = features.loc[[invoice["invoice_id"]]].copy()
        row["carrier_prior_invoices"] = self.carrier_volume(invoice)
        context = {"origin": fact["origin"], "destination": fact["destination"],
                   "scheduled_departure": _utc(fact["scheduled_departure"])
                   if pd.notna(fact["scheduled_departure"]) else None,
                   "is_spot": bool(row["is_spot"].iloc[0] == 1.0),
                   "chargeable_weight_kg": _number(row["chargeable_weight_kg"].iloc[0])}
        explained = self.model.model.explain(row, top=5)[0]
        scores = self.model.model.score(row).iloc[0].to_dict()
        reasons = [dict(r.__dict__) for r in explained.reasons]
        return InvoiceScores({k: (v if isinstance(v, str) else float(v)) for k, v in scores.items()}, reasons,
                             {k: float(v) for k, v in row.iloc[0].items()}, True, in_force,
                             lane=f"{fact['origin']}-{fact['destination']}", context=context)

    def remember(self, invoice: dict, scored: InvoiceScores | None = None) -> None:
        """Keep the invoice, with its context when it was scored, for later look-back features (once)."""
        row = {k: invoice[k] for k in ("invoice_id", "carrier", "shipment_id", "total", "billed_weight_kg", "lines")}
        row |= {k: _utc(invoice[k]) for k in ("invoice_date", "received_at")}
        row |= (scored.context if scored is not None and scored.context else {})
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(invoices_seen).values(**row))
        except IntegrityError:
            pass
