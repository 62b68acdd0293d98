"""Training/serving parity of the invoice audit features.

Training computes every invoice's features from the whole generated year at once; the service computes
one invoice at a time from its own reference lookups and the invoices it has seen (``invoices_seen``,
the carrier's last ``LOOKBACK``). The two must agree exactly, or the model is served inputs it was not
trained on. The year's invoices before the replayed stretch are stored as the service would have stored
them; the last stretch is then scored through ``InvoiceScorer``, one by one and, on a second database,
in batches (``score_many``; each batch is stored before the next, as the batch endpoint does).
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, text

from features.rerating import FEATURE_NAMES, rerate
from serving.db import create_schema, invoices_seen, make_engine
from serving.invoice_scoring import InvoiceScorer, seen_rows
from serving.scoring import LoadedModel
from tests.serving.conftest import PG_URL
from training.invoice_job import load_invoice_world, training_features
from training.invoice_spec import load_invoice_spec

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # integration: PostgreSQL

REPLAYED = 150


class _Echo:
    """Stands in for the model: the test looks at the features the scorer computed, not at scores."""

    def explain(self, rows, top):
        return [SimpleNamespace(reasons=()) for _ in range(len(rows))]

    def score(self, rows):
        return pd.DataFrame([{"predicted_class": "clean"}] * len(rows))


class _WorldScorer(InvoiceScorer):
    """The scorer with the generated world as its reference store (instead of Feast's online store)."""

    def __init__(self, world, engine):
        super().__init__(LoadedModel("echo", "0", "none", _Echo()), None, engine)
        self.facts = world.shipment_facts.set_index("shipment_id", drop=False)
        self.world = world

    def references(self, shipment_ids):
        facts = self.facts.loc[[s for s in dict.fromkeys(shipment_ids) if s in self.facts.index]]
        return facts.reset_index(drop=True), self.world.contracts, self.world.fuel_index


def _record(head: pd.Series, lines: pd.DataFrame) -> dict:
    return {"invoice_id": head["invoice_id"], "carrier": head["carrier"], "shipment_id": head["shipment_id"],
            "invoice_date": head["invoice_date"], "received_at": head["received_at"], "total": float(head["total"]),
            "billed_weight_kg": None if pd.isna(head["billed_weight_kg"]) else float(head["billed_weight_kg"]),
            "lines": [{"code": c, "amount": float(a)} | ({} if pd.isna(q) else {"quantity": float(q)})
                      for c, a, q in zip(lines["code"], lines["amount"], lines["quantity"])]}


@pytest.fixture(scope="module")
def world(embedded_history):
    world, _ = load_invoice_world(load_invoice_spec("invoice_smoke"), history=embedded_history)
    return world


BATCH = 40  # the replayed stretch in four batches, the last one short


@pytest.fixture(scope="module", params=[("sqlite", 1), ("sqlite", BATCH), ("postgresql", BATCH)],
                ids=["one_at_a_time", "batches", "batches_postgresql"])
def parity(world, tmp_path_factory, request):
    backend, size = request.param
    refs = {"facts": world.shipment_facts, "contracts": world.contracts, "fuel_index": world.fuel_index}
    trained = training_features(world)  # what the training job itself fits on
    context = rerate(world.invoices, world.invoice_lines, **refs).set_index("invoice_id")
    heads = world.invoices.assign(received_at=world.invoices["received_at"].fillna(world.invoices["invoice_date"]))
    heads = heads.sort_values(["received_at", "invoice_id"]).reset_index(drop=True)
    lines = {k: v for k, v in world.invoice_lines.groupby("invoice_id")}
    where = tmp_path_factory.mktemp("parity")
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{where}/tollgate.db")
    else:  # the look-back queries (row-value IN, NOT IN, insert if absent) on PostgreSQL too
        schema = f"parity_{uuid.uuid4().hex[:16]}"  # unique per run (another run may share the server)
        with make_engine(PG_URL).begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    create_schema(engine)
    stored, replayed = heads.iloc[:-REPLAYED], heads.iloc[-REPLAYED:]
    rows = seen_rows(stored, world.invoice_lines[world.invoice_lines["invoice_id"].isin(stored["invoice_id"])],
                     context)
    with engine.begin() as conn:
        conn.execute(insert(invoices_seen), rows)
    scorer = _WorldScorer(world, engine)
    served = {}
    invoices = [_record(pd.Series(head._asdict()), lines[head.invoice_id]) for head in replayed.itertuples(index=False)]
    for start in range(0, len(invoices), size):
        batch = invoices[start:start + size]
        scored = [scorer.score(batch[0])] if size == 1 else scorer.score_many(batch)
        with engine.begin() as conn:
            scorer.remember_many(conn, batch, scored)
        served |= {invoice["invoice_id"]: s.features for invoice, s in zip(batch, scored, strict=True)}
    yield trained.loc[list(served)], pd.DataFrame.from_dict(served, orient="index")[list(FEATURE_NAMES)]
    engine.dispose()
    if backend == "postgresql":
        with make_engine(PG_URL).begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def test_the_replay_covers_the_look_back_features(parity):
    trained, _ = parity
    assert len(trained) == REPLAYED
    assert (trained["exact_copy_count"] > 0).sum() >= 10
    assert (trained["exact_copy_same_shipment"] == 0).sum() >= 5  # copies across shipments of a lane
    assert (trained["lane_prior_invoices"] > 0).mean() > 0.5
    assert (trained["near_amount_match"] == 1).sum() >= 5
    assert (trained["prior_same_shipment_invoices"] > 0).sum() >= 5


def test_served_features_equal_trained_features(parity):
    trained, served = parity
    mismatched = {}
    for name in FEATURE_NAMES:
        a, b = trained[name].to_numpy(float), served[name].to_numpy(float)
        same = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            mismatched[name] = int((~same).sum())
    assert not mismatched, mismatched
