"""Scoring a carrier invoice at arrival: reference data from Feast, earlier invoices from the database,
the same re-rating and audit features as training, the champion discrepancy model.

Duplicate and carrier-history features need the invoices that arrived before this one: the service
keeps every invoice it has seen (``invoices_seen``), with the context the look-back features need of it
(lane, departure, spot or not, chargeable weight: ``features.rerating.KNOWN_CONTEXT``), and passes the
carrier's invoices of the longest look-back window (``LOOKBACK``) with the new
invoice through :func:`features.rerating.audit_features`, which only ever looks backwards.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import or_, select, tuple_
from sqlalchemy.engine import Connection, Engine

from features.errors import FeaturesUnavailable
from features.feast_invoice_defs import contract_lane_key, fuel_week_key, online_reference
from features.reference import MODE_FUEL_KIND
from features.rerating import KNOWN_CONTEXT, audit_features
from features.rerating_carrier import RECENT_DAYS, SPOT_HISTORY_DAYS
from features.rerating_copies import COPY_WINDOW_DAYS
from features.rerating_history import NEAR_AMOUNT_DAYS
from serving.bulk_insert import insert_if_absent
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


def _received(invoice: dict) -> datetime:
    return _utc(invoice.get("received_at") or invoice["invoice_date"])


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
    """Scores invoices with the champion ``invoice_discrepancy`` model, a batch in one pass."""

    def __init__(self, model: LoadedModel, store, engine: Engine) -> None:
        self.model, self.store, self.engine = model, store, engine

    def references(self, shipment_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The facts of those shipments the store knows, every contract version of their lanes and the
        fuel index of their shipment weeks: one online read per kind, whatever the number of invoices."""
        try:
            facts = online_reference(self.store, "shipments", list(dict.fromkeys(shipment_ids)))
            if facts.empty:
                return facts, pd.DataFrame(), pd.DataFrame()
            contracts = online_reference(self.store, "contracts", list(dict.fromkeys(contract_lane_key(facts))))
            ship = pd.to_datetime(facts["ship_date"])
            weeks = (ship - pd.to_timedelta(ship.dt.weekday, unit="D")).dt.normalize()
            kinds = facts["mode"].map(lambda mode: MODE_FUEL_KIND[mode].value)
            fuel = online_reference(self.store, "fuel-index", list(dict.fromkeys(fuel_week_key(kinds, weeks))))
        except Exception as exc:  # noqa: BLE001 - any online-store failure means no reference data
            raise FeaturesUnavailable(f"reference data unavailable: {exc}") from exc
        return facts, contracts, fuel

    def earlier(self, invoices: list[dict], facts: pd.DataFrame) -> list[dict]:
        """The stored invoices that can move these invoices' look-back features: each carrier's invoices
        received within ``LOOKBACK`` before the first of them (up to the last) on their lanes, of their
        shipments, or on spot shipments (the carrier's spot minimum). The invoices themselves are left out
        (they are passed along as they are). Invoices received after one of them are harmless: every
        look-back feature only looks backwards. The carrier's volume, the one carrier-wide count, is
        :meth:`carrier_volumes`."""
        seen = invoices_seen.c
        lanes = dict(zip(facts["shipment_id"], zip(facts["origin"], facts["destination"], strict=True), strict=True))
        ids = [i["invoice_id"] for i in invoices]
        by_carrier: dict[str, list[dict]] = {}
        for invoice in invoices:
            by_carrier.setdefault(invoice["carrier"], []).append(invoice)
        found: list[dict] = []
        with self.engine.connect() as conn:
            for carrier, own in by_carrier.items():
                received = [_received(i) for i in own]
                since = min(min(r, _utc(i["invoice_date"])) for r, i in zip(received, own, strict=True)) - LOOKBACK
                pairs = list(dict.fromkeys(lanes[i["shipment_id"]] for i in own if i["shipment_id"] in lanes))
                relevant = [seen.shipment_id.in_(list(dict.fromkeys(i["shipment_id"] for i in own))),
                            seen.is_spot.is_(True)]
                if pairs:
                    relevant.append(tuple_(seen.origin, seen.destination).in_(pairs))
                query = select(invoices_seen).where(seen.carrier == carrier, seen.received_at >= since,
                                                    seen.received_at <= max(received), seen.invoice_id.not_in(ids),
                                                    or_(*relevant))
                found.extend(dict(r) for r in conn.execute(query).mappings())
        return found

    def carrier_volumes(self, invoices: list[dict]) -> list[float]:
        """``carrier_prior_invoices`` as training counts it, per invoice: the carrier's invoices received
        in the ``RECENT_DAYS`` before it, earlier in receipt order (time, then invoice id), stored ones
        and those passed together."""
        seen = invoices_seen.c
        received = [_received(i) for i in invoices]
        window = timedelta(days=RECENT_DAYS)
        ids = [i["invoice_id"] for i in invoices]
        order: dict[str, list[tuple[datetime, str]]] = {}
        for invoice, moment in zip(invoices, received, strict=True):
            order.setdefault(invoice["carrier"], []).append((moment, invoice["invoice_id"]))
        with self.engine.connect() as conn:
            for carrier, own in order.items():
                query = select(seen.received_at, seen.invoice_id).where(
                    seen.carrier == carrier, seen.received_at >= min(own)[0] - window,
                    seen.received_at <= max(own)[0], seen.invoice_id.not_in(ids))
                own.extend((_utc(r), i) for r, i in conn.execute(query))
                own.sort()
        counts = []
        for invoice, moment in zip(invoices, received, strict=True):
            keys = order[invoice["carrier"]]
            counts.append(float(bisect_left(keys, (moment, invoice["invoice_id"]))
                                - bisect_left(keys, (moment - window, ""))))
        return counts

    @staticmethod
    def _known(rows: list[dict]) -> pd.DataFrame:
        known = pd.DataFrame([{"invoice_id": r["invoice_id"], **{c: r.get(c) for c in KNOWN_CONTEXT}}
                              for r in rows], columns=["invoice_id", *KNOWN_CONTEXT])
        return known.set_index("invoice_id")

    def score(self, invoice: dict) -> InvoiceScores:
        return self.score_many([invoice])[0]

    def score_many(self, invoices: list[dict]) -> list[InvoiceScores]:
        """Score invoices of distinct ids together, in one pass of the audit features over them and the
        stored invoices before them: each sees the others received before it as it sees stored ones, just
        as training sees the whole history (tests/serving/test_invoice_parity.py, one at a time and in
        batches)."""
        if len({i["invoice_id"] for i in invoices}) < len(invoices):
            raise ValueError("score_many takes each invoice id once")
        facts, contracts, fuel = self.references([i["shipment_id"] for i in invoices])
        unknown = InvoiceScores(None, [], {}, shipment_known=False, contract_known=False)
        if facts.empty:
            return [unknown for _ in invoices]
        facts_of = {f["shipment_id"]: f for f in facts.to_dict("records")}
        known = [i for i in invoices if i["shipment_id"] in facts_of]
        earlier = self.earlier(invoices, facts)
        # the others (shipment unknown) count as the service stores them: without context
        context_free = [{"invoice_id": i["invoice_id"]} for i in invoices if i["shipment_id"] not in facts_of]
        frame, lines = _frames([*earlier, *invoices])
        features = audit_features(frame, lines, facts=facts, contracts=contracts, fuel_index=fuel,
                                  known=self._known([*earlier, *context_free]))
        rows = features.loc[[i["invoice_id"] for i in known]].copy()
        volumes = dict(zip((i["invoice_id"] for i in invoices), self.carrier_volumes(invoices), strict=True))
        rows["carrier_prior_invoices"] = [volumes[i["invoice_id"]] for i in known]
        terms: dict[str, list[tuple]] = {}  # lane -> the (effective_from, effective_to) of its versions
        if not contracts.empty:
            for lane, start, end in zip(contract_lane_key(contracts), contracts["effective_from"],
                                        contracts["effective_to"], strict=True):
                terms.setdefault(lane, []).append((start, end))
        explained = self.model.model.explain(rows, top=5)
        scored = self.model.model.score(rows).to_dict("records")
        out: dict[str, InvoiceScores] = {}
        for invoice, explanation, scores, values in zip(known, explained, scored, rows.to_dict("records"),
                                                        strict=True):
            fact = facts_of[invoice["shipment_id"]]
            ship_date = pd.Timestamp(fact["ship_date"])
            in_force = any(start <= ship_date <= end for start, end in terms.get(contract_lane_key(fact), ()))
            context = {"origin": fact["origin"], "destination": fact["destination"],
                       "scheduled_departure": _utc(fact["scheduled_departure"])
                       if pd.notna(fact["scheduled_departure"]) else None,
                       "is_spot": bool(values["is_spot"] == 1.0),
                       "chargeable_weight_kg": _number(values["chargeable_weight_kg"])}
            out[invoice["invoice_id"]] = InvoiceScores(
                {k: (v if isinstance(v, str) else float(v)) for k, v in scores.items()},
                [dict(r.__dict__) for r in explanation.reasons], {k: float(v) for k, v in values.items()},
                True, in_force, lane=f"{fact['origin']}-{fact['destination']}", context=context)
        return [out.get(i["invoice_id"], unknown) for i in invoices]

    @staticmethod
    def remember_many(conn: Connection, invoices: list[dict], scored: list[InvoiceScores | None]) -> None:
        """Keep invoices for later look-back features, each with its context when it was scored, in the
        caller's transaction. An invoice already kept is left as it was (insert if absent: its first form
        is the one remembered)."""
        rows = [seen_row(invoice, s) for invoice, s in zip(invoices, scored, strict=True)]
        insert_if_absent(conn, invoices_seen, rows, key="invoice_id")


def seen_row(invoice: dict, scored: InvoiceScores | None = None) -> dict:
    """The ``invoices_seen`` row of an invoice, with its context when it was scored."""
    row = {k: invoice[k] for k in ("invoice_id", "carrier", "shipment_id", "total", "billed_weight_kg", "lines")}
    row |= {k: _utc(invoice[k]) for k in ("invoice_date", "received_at")}
    return row | dict.fromkeys(KNOWN_CONTEXT) | (scored.context if scored is not None and scored.context else {})
