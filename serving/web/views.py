"""What the queue and case pages show, built from the review service's dicts (no HTTP, no templates).

The page's query parameters are parsed leniently: a bad value is reported on the page and ignored,
never answered with a JSON validation error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from features.reference import Discrepancy
from serving.auth import Caller, Role
from serving.web import evidence
from serving.web.phrases import (
    feature_label,
    feature_value,
    label_of,
    money,
    percent,
    sla_left,
    when,
)

PAGE_SIZE = 25
STATUSES = {"open": "Open (claimed or not)", "available": "Open, not claimed", "claimed": "Claimed",
            "awaiting_approval": "Awaiting second approval", "resolved": "Resolved",
            "unresolved": "Not yet final", "all": "Any status"}
SHOWN = {**STATUSES, "open": "Open"}
SORTS = {"priority": "Priority", "amount_at_risk": "Amount at risk", "sla_due_at": "SLA due",
         "created_at": "Created", "confidence": "Confidence"}
SLA_CHOICES = {"": "Any", "breached": "Breached", "within": "Within SLA"}
CLASSES = tuple(d.value for d in Discrepancy)
SHIPMENT_CLASSES = ("late", "on_time")
APPROVERS = frozenset({Role.APPROVER, Role.ADMIN})


@dataclass(frozen=True)
class QueueQuery:
    queue: str = ""
    status: str = "open"
    carrier: str = ""
    lane: str = ""
    discrepancy: str = ""
    amount_min: float | None = None
    amount_max: float | None = None
    sla: str = ""
    sort: str = "priority"
    order: str = "desc"
    page: int = 1
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, params) -> QueueQuery:
        """From the page's query parameters; unusable values are dropped with a note for the page."""
        text = {k: str(params.get(k, "")).strip()[:64] for k in ("queue", "carrier", "lane", "discrepancy")}
        problems: list[str] = []
        status = params.get("status", "open") or "open"
        if status not in STATUSES:
            problems.append(f"Unknown status '{status[:32]}': showing open cases.")
            status = "open"
        amounts = {k: _amount(params.get(k), k, problems) for k in ("amount_min", "amount_max")}
        sort = params.get("sort", "priority")
        if sort not in SORTS:
            problems.append(f"Cannot sort by '{sort[:32]}': sorted by priority.")
            sort = "priority"
        sla = params.get("sla", "") if params.get("sla", "") in SLA_CHOICES else ""
        order = "asc" if params.get("order") == "asc" else "desc"
        page = _page(params.get("page"), problems)
        return cls(**text, status=status, **amounts, sla=sla, sort=sort, order=order, page=page,
                   problems=tuple(problems))

    def service_args(self) -> dict:
        """Keyword arguments of ``ReviewService.list_cases``."""
        return {"queue": self.queue or None, "status": self.status,
                "carrier": self.carrier.upper() or None, "lane": self.lane.upper() or None,
                "discrepancy": self.discrepancy or None, "amount_min": self.amount_min,
                "amount_max": self.amount_max,
                "sla_breached": {"breached": True, "within": False}.get(self.sla), "sort": self.sort,
                "descending": self.order == "desc", "limit": PAGE_SIZE, "offset": (self.page - 1) * PAGE_SIZE}

    def link(self, **changes) -> str:
        """The query string of this view with ``changes`` (defaults left out)."""
        values = replace(self, **changes)
        pairs = {k: getattr(values, k) for k in ("queue", "status", "carrier", "lane", "discrepancy", "amount_min",
                                                  "amount_max", "sla", "sort", "order", "page")}
        defaults = QueueQuery()
        kept = {k: v for k, v in pairs.items() if v not in (None, "") and v != getattr(defaults, k)}
        return "?" + urlencode(kept) if kept else "?"

    def sort_link(self, column: str) -> str:
        """Click a column: sort by it (riskiest first); click it again: reverse."""
        if self.sort == column:
            return self.link(order="asc" if self.order == "desc" else "desc", page=1)
        return self.link(sort=column, order="desc", page=1)

    def aria_sort(self, column: str) -> str:
        if self.sort != column:
            return "none"
        return "descending" if self.order == "desc" else "ascending"


def _amount(raw, name: str, problems: list[str]) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(str(raw).replace(",", "").replace("$", ""))
    except ValueError:
        problems.append(f"'{str(raw)[:32]}' is not an amount ({name.replace('_', ' ')} ignored).")
        return None
    if not 0 <= value <= 1e12:
        problems.append(f"{name.replace('_', ' ')} must be between 0 and a trillion (ignored).")
        return None
    return value


def _page(raw, problems: list[str]) -> int:
    if raw in (None, ""):
        return 1
    if not str(raw).isdigit() or not 1 <= int(raw) <= 100_000:
        problems.append(f"Page '{str(raw)[:16]}' does not exist: showing page 1.")
        return 1
    return int(raw)


def queue_row(item: dict, *, now: datetime) -> dict:
    """One table row of the queue, formatted."""
    sla_text, breached = sla_left(item.get("sla_due_at"), now=now, breached=item.get("sla_breached"),
                                  final=item.get("status") == "resolved")
    return {
        "case_id": item["case_id"], "subject": f"{label_of(item.get('kind'))} {item.get('subject_id', '')}",
        "priority": f"{float(item.get('priority') or 0):,.0f}", "priority_label": label_of(item.get("priority_label")),
        "amount": money(item.get("amount_at_risk")), "carrier": item.get("carrier") or "—",
        "lane": item.get("lane") or "—", "predicted": label_of(item.get("predicted_class")),
        "confidence": percent(item.get("confidence")), "sla": sla_text, "breached": breached,
        "sla_due": when(item.get("sla_due_at")), "status": SHOWN.get(item.get("status"), label_of(item.get("status"))),
        "claimed_by": item.get("claimed_by"), "queue": item.get("queue") or "—",
    }


def queue_page(listing: dict, query: QueueQuery, *, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    total = int(listing.get("total") or 0)
    first = (query.page - 1) * PAGE_SIZE
    rows = [queue_row(item, now=now) for item in listing.get("items") or []]
    counts = listing.get("counts") or {}
    return {"rows": rows, "total": total, "first": first + 1 if rows else 0, "last": first + len(rows),
            "counts": {"open": counts.get("open", 0), "claimed": counts.get("claimed", 0),
                       "awaiting_approval": counts.get("awaiting_approval", 0),
                       "sla_breached": counts.get("sla_breached", 0)} if counts else None,
            "previous": query.link(page=query.page - 1) if query.page > 1 else None,
            "next": query.link(page=query.page + 1) if first + len(rows) < total else None}


def _detail(key: str, value: object) -> str:
    if "amount" in key or key == "short_paid":
        return money(value)
    if key in ("verdict", "reason_code", "discrepancy", "reason"):
        return label_of(str(value))
    return when(value) if key.endswith("_at") else str(value)


HISTORY_DETAILS = ("verdict", "amount", "reason_code", "discrepancy", "note", "lease_expires_at", "payable_amount",
                   "disputed_amount", "short_paid", "reason", "queue")


def history_row(entry: dict) -> dict:
    payload = entry.get("payload") or {}
    if isinstance(payload.get("verdict"), dict):
        payload = {**payload, **payload["verdict"]}
    details = "; ".join(f"{label_of(k)}: {_detail(k, payload[k])}" for k in HISTORY_DETAILS
                        if payload.get(k) not in (None, ""))
    return {"at": when(entry.get("at")), "actor": entry.get("actor") or "—", "role": entry.get("role") or "",
            "action": label_of(entry.get("action")), "from": label_of(entry.get("from_status")),
            "to": label_of(entry.get("to_status")), "details": details}


def reasons_in_words(response: dict, kind: str) -> list[dict]:
    """The model's top reasons: the feature in words, its value, and which way it pushed."""
    predicted = label_of((response.get("scores") or {}).get("predicted_class"))
    target = f"“{predicted}”" if kind == "invoice" else "a late delivery"
    out = []
    for reason in response.get("reasons") or []:
        name, contribution = str(reason.get("feature", "")), float(reason.get("contribution") or 0.0)
        out.append({"phrase": feature_label(name), "value": feature_value(name, reason.get("value")),
                    "effect": f"points towards {target}" if contribution >= 0 else f"points away from {target}",
                    "feature": name})
    return out


def allowed_actions(case: dict, reviewer: Caller) -> dict:
    """Which forms the page offers this reviewer (the service still has the last word).

    The service shows a case as ``claimed`` while a lease runs (``claimed_by_key`` holds it); an expired
    lease shows it ``open`` again.
    """
    status = case.get("status")
    mine = status == "claimed" and case.get("claimed_by_key") == reviewer.key_id
    return {"claim": status == "open", "release": mine, "resolve": mine, "extend": mine,
            "approve": status == "awaiting_approval" and reviewer.role in APPROVERS,
            "held_by_other": status == "claimed" and not mine, "holder_name": case.get("claimed_by"),
            "lease_until": when(case.get("lease_expires_at")) if case.get("lease_expires_at") else None}


def case_page(raw: dict, reviewer: Caller, *, facts_lookup=None, engine=None, now: datetime | None = None) -> dict:
    """Everything the case page shows, from ``ReviewService.get_case``."""
    now = now or datetime.now(UTC)
    case = raw.get("case") if isinstance(raw.get("case"), dict) else raw
    decision = raw.get("decision") or case.get("decision") or {}
    request, response = decision.get("request") or {}, decision.get("response") or {}
    features = decision.get("features") or {}
    kind = case.get("kind") or decision.get("kind") or response.get("kind") or ""
    shipment_id = request.get("shipment_id") or (case.get("subject_id") if kind == "shipment" else None)
    movement, events = (evidence.movement_and_events(engine, shipment_id, request) if engine and shipment_id
                        else ([], []))
    reference, reference_note = (evidence.reference_facts(facts_lookup, shipment_id) if kind == "invoice"
                                 and shipment_id else ([], ""))
    sla_text, breached = sla_left(case.get("sla_due_at"), now=now, breached=case.get("sla_breached"),
                                  final=case.get("status") == "resolved")
    history = raw.get("history") or case.get("history") or []
    return {
        "case": case, "kind": kind, "request": request, "response": response, "scores": response.get("scores") or {},
        "title": f"{label_of(kind)} {case.get('subject_id', '')}",
        "status": SHOWN.get(case.get("status"), label_of(case.get("status"))),
        "amount": money(case.get("amount_at_risk")), "predicted": label_of(case.get("predicted_class")),
        "confidence": percent(case.get("confidence")), "sla": sla_text, "breached": breached,
        "sla_due": when(case.get("sla_due_at")), "charges": evidence.charge_table(request, features)
        if kind == "invoice" else None, "shipment_facts": evidence.merge_facts(
            movement, reference, evidence.recorded_facts(features)), "events": events, "reference_note": reference_note,
        "reasons": reasons_in_words(response, kind), "rules": _rules(response),
        "actions_taken": [(label_of(a.get("type")), a.get("params") or {}) for a in response.get("actions") or []],
        "history": [history_row(e) for e in history], "can": allowed_actions(case, reviewer),
        "billed_total": request.get("total"), "classes": [(c, label_of(c)) for c in CLASSES],
        "resolution": _resolution(raw.get("resolution")),
    }


def _resolution(found: dict | None) -> dict | None:
    if not found:
        return None
    return {"verdict": label_of(found.get("verdict")), "amount": money(found.get("amount")) if found.get(
        "amount") is not None else None, "reason": label_of(found.get("reason_code")) if found.get("reason_code")
        else None, "discrepancy": label_of(found.get("discrepancy")) if found.get("discrepancy") else None,
        "note": found.get("note"), "by": found.get("resolved_by_name"), "at": when(found.get("resolved_at")),
        "label": label_of(found.get("label_class")) if found.get("label_class") else None,
        "second_approval": bool(found.get("needs_second_approval"))}


def _rules(response: dict) -> list[dict]:
    details = {t.get("rule_id"): t.get("detail", "") for t in response.get("trace") or []}
    return [{"id": rule, "detail": details.get(rule, "")} for rule in response.get("rules_fired") or []]
