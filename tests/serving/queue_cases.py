"""A few review cases made the way production makes them: invoice decisions through the decision path
(stub invoice scorer with re-rated audit features), shipment events through ``record_event``.

The stub's features are a consistent re-rating of each invoice: linehaul at the contract rate, fuel at
the index percentage, accessorials as the facts support, so the case page has real differences to show.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from serving.auth import Role, create_key
from serving.invoice_decisions import decide_invoices
from serving.invoice_scoring import InvoiceScores
from serving.live_updates import record_event
from serving.schemas import EventIn, InvoiceIn
from serving.scoring import LoadedModel

CLASSES = ("clean", "rate_overcharge", "fuel_surcharge_error", "unbacked_accessorial", "weight_overbilled",
           "duplicate", "billed_before_delivery")


class StubInvoiceScorer:
    """Scores from a table keyed by invoice id: (predicted class, its probability, amount at risk, expected)."""

    def __init__(self, table: dict[str, dict]) -> None:
        self.table = table
        self.model = LoadedModel("invoice_discrepancy", "3", "invoice_reference_v1", None)

    def score(self, invoice: dict) -> InvoiceScores:
        spec = self.table[invoice["invoice_id"]]
        features = _features(invoice, spec["expected"])
        p = spec["p"]
        probabilities = {f"p_{c}": (p if c == spec["cls"] else (1 - p) / (len(CLASSES) - 1)) for c in CLASSES}
        scores = {**probabilities, "predicted_class": spec["cls"], "p_predicted": p,
                  "amount_at_risk": spec["at_risk"]}
        reasons = [{"feature": "linehaul_delta", "value": features["linehaul_delta"], "contribution": 1.9},
                   {"feature": "fuel_pct_delta", "value": features["fuel_pct_delta"], "contribution": 0.7},
                   {"feature": "pod_present_at_invoice", "value": 1.0, "contribution": -0.3}]
        return InvoiceScores(scores, reasons, features, shipment_known=True, contract_known=True,
                             lane=spec.get("lane", "EWR-ORD"))

    def score_many(self, invoices: list[dict]) -> list[InvoiceScores]:
        return [self.score(invoice) for invoice in invoices]

    @staticmethod
    def remember_many(*_: object) -> None:
        """Nothing to remember: the stub scores from its table, not from earlier invoices."""


def _features(invoice: dict, expected: dict[str, float | None]) -> dict:
    billed: dict[str, float] = {}
    for line in invoice["lines"]:
        billed[line["code"]] = billed.get(line["code"], 0.0) + line["amount"]
    out = {"linehaul_billed": billed.get("linehaul", 0.0), "linehaul_expected": expected["linehaul"],
           "fuel_billed": billed.get("fuel", 0.0), "fuel_expected": expected["fuel"],
           "fuel_pct_billed": 100 * billed.get("fuel", 0.0) / billed["linehaul"],
           "fuel_pct_expected": 100 * expected["fuel"] / expected["linehaul"],
           "rate_expected": 2.5, "chargeable_weight_kg": expected["linehaul"] / 2.5,
           "billed_weight_kg": invoice.get("billed_weight_kg") or math.nan, "is_spot": 0.0,
           "arrival_delay_hours": 3.5, "pod_missing": 0.0, "pod_present_at_invoice": 1.0,
           "invoice_days_after_pod": 2.0, "delivery_attempts": 1.0, "dangerous_goods": 0.0}
    accessorial_billed = accessorial_expected = 0.0
    for code, amount in billed.items():
        if code in ("linehaul", "fuel"):
            continue
        due = expected.get(code)
        out[f"{code}_delta"] = math.nan if due is None else amount - due
        accessorial_billed += amount
        accessorial_expected += amount if due is None else due
    out |= {"accessorial_billed": accessorial_billed, "accessorial_expected": accessorial_expected}
    for part in ("linehaul", "fuel", "accessorial"):
        out[f"{part}_delta"] = out[f"{part}_billed"] - out[f"{part}_expected"]
    out["fuel_pct_delta"] = out["fuel_pct_billed"] - out["fuel_pct_expected"]
    out["total_billed"] = sum(billed.values())
    out["total_expected"] = out["linehaul_expected"] + out["fuel_expected"] + accessorial_expected
    out["total_delta"] = out["total_billed"] - out["total_expected"]
    return out


def _invoice(invoice_id: str, shipment_id: str, lines: list[tuple[str, float]], *, carrier: str = "UA") -> dict:
    return {"invoice_id": invoice_id, "carrier": carrier, "shipment_id": shipment_id,
            "invoice_date": "2013-12-06T00:00:00", "received_at": "2013-12-06T09:30:00+00:00", "currency": "USD",
            "lines": [{"code": code, "amount": amount} for code, amount in lines],
            "total": round(sum(a for _, a in lines), 2), "billed_weight_kg": 420.0}


INVOICES = {
    # the riskiest dollars: a rate overcharge on the linehaul and fuel on top of it
    "INV-OVER": (_invoice("INV-OVER", "SHP-1", [("LINEHAUL", 1450.0), ("FUEL", 261.0), ("SECURITY", 63.0),
                                                ("STORAGE", 150.0)]),
                 {"cls": "rate_overcharge", "p": 0.62, "at_risk": 520.0, "lane": "EWR-ORD",
                  "expected": {"linehaul": 1050.0, "fuel": 168.0, "security": 63.0, "storage": None}}),
    "INV-FUEL": (_invoice("INV-FUEL", "SHP-2", [("LINEHAUL", 800.0), ("FUEL", 176.0), ("HANDLING", 40.0)],
                          carrier="DL"),
                 {"cls": "fuel_surcharge_error", "p": 0.55, "at_risk": 48.0, "lane": "JFK-ATL",
                  "expected": {"linehaul": 800.0, "fuel": 128.0, "handling": 40.0}}),
    # above the policy's high-value threshold: needs a second approval when resolved
    "INV-BIG": (_invoice("INV-BIG", "SHP-3", [("LINEHAUL", 5600.0), ("FUEL", 896.0)], carrier="AA"),
                {"cls": "clean", "p": 0.8, "at_risk": 130.0, "lane": "LGA-MIA",
                 "expected": {"linehaul": 5600.0, "fuel": 896.0}}),
}


def seed_cases(runtime) -> dict[str, str]:
    """Decide the invoices (creating their review cases) and report delivery events; invoice id → case id."""
    scorer = StubInvoiceScorer({k: spec for k, (_, spec) in INVOICES.items()})
    requests = [InvoiceIn.model_validate(body) for body, _ in INVOICES.values()]
    decide_invoices(runtime.decisions, lambda: scorer, requests, header_key=None, caller=None)
    departed = datetime(2013, 12, 2, 14, 5, tzinfo=UTC)
    for n, (kind, at) in enumerate((("departed", departed), ("arrived", departed + timedelta(hours=5)),
                                    ("delivered", departed + timedelta(days=1)),
                                    ("proof_of_delivery", departed + timedelta(days=1, minutes=20)))):
        record_event(runtime.engine, EventIn(
            event_id=f"SHP-1-{n}", type=kind, shipment_id="SHP-1", occurred_at=at, carrier="UA", origin="EWR",
            destination="ORD", scheduled_at=departed, details={"signed_by": "R. Ortiz"} if n == 3 else {}))
    listing = runtime.reviews.list_cases(status="all", limit=50)
    return {item["subject_id"]: item["case_id"] for item in listing["items"]}


def make_keys(engine) -> dict[str, str]:
    """One key per role, named like people (the name is what the history shows)."""
    names = {Role.REVIEWER: "Rita Reviewer", Role.APPROVER: "Abe Approver", Role.ADMIN: "Ada Admin",
             Role.ORCHESTRATOR: "tms-bridge"}
    return {role.value: create_key(engine, role=role, name=name) for role, name in names.items()}
