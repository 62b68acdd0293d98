"""Service fixtures: the API over a real database with stub models (no MLflow, no Feast)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.errors import FeaturesUnavailable, ModelUnavailable
from serving.app import create_app
from serving.auth import Role, create_key
from serving.db import create_schema, make_engine
from serving.decisions import DecisionService
from serving.policy_store import PolicySource
from serving.runtime import Runtime
from serving.scoring import DelayScores, LoadedModel

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class StubDelayScorer:
    """p_late from a lookup by carrier; alternatives are the other carriers, scored the same way."""

    def __init__(self, risk: dict[str, float], fail: Exception | None = None) -> None:
        self.risk, self.fail = risk, fail
        self.model = LoadedModel("delay_risk", "7", "delay_risk_v1", None)
        self.calls = self.alternatives_asked = 0

    def score(self, shipments: list[dict], *, explain=True) -> DelayScores:
        self.calls += 1
        if self.fail:
            raise self.fail
        carriers = [s["carrier"] for s in shipments]
        p = np.array([self.risk.get(c, 0.2) for c in carriers])
        reasons = [[{"feature": "origin_live_undeparted_120m", "value": 9.0, "contribution": 0.8}]] * len(p)
        features = [{"carrier_volume_30d": None if c not in self.risk else 40.0} for c in carriers]
        return DelayScores(p, reasons, features, [c not in self.risk for c in carriers])

    def alternatives(self, shipments: list[dict], p_late) -> list[list[dict]]:
        self.alternatives_asked += len(shipments)
        return [[{"carrier": c, "p_late": v, "gain": round(float(p) - v, 4)}
                 for c, v in sorted(self.risk.items(), key=lambda kv: kv[1]) if c != shipment["carrier"]]
                for shipment, p in zip(shipments, p_late, strict=True)]


def make_runtime(url: str, scorer) -> Runtime:
    engine = make_engine(url)
    create_schema(engine)
    runtime = Runtime(engine=engine, decisions=None)  # type: ignore[arg-type]

    def delay_scorer():
        if isinstance(scorer, Exception):
            raise scorer
        return scorer

    runtime.decisions = DecisionService(engine=engine, policies=PolicySource(engine, ttl=0.0),
                                        delay_scorer=delay_scorer)
    return runtime


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tollgate.db"
        return
    from sqlalchemy import text

    engine = make_engine(PG_URL)
    # unique per run: named after the test alone, two runs sharing the server (CI beside a developer's run)
    # dropped each other's schemas mid-test
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture
def scorer():
    return StubDelayScorer({"AA": 0.72, "DL": 0.31, "UA": 0.45})


@pytest.fixture
def api(database_url, scorer):
    runtime = make_runtime(database_url, scorer)
    keys = {role: create_key(runtime.engine, role=role, name=f"test-{role.value}") for role in Role}
    client = TestClient(create_app(lambda: runtime))
    client.keys = keys
    client.runtime = runtime
    client.headers_for = lambda role: {"Authorization": f"Bearer {keys[role]}"}
    return client


SHIPMENT = {"shipment_id": "S-1", "carrier": "AA", "origin": "JFK", "destination": "LAX",
            "scheduled_departure": "2013-12-02T14:00:00-05:00", "scheduled_arrival": "2013-12-02T17:30:00-08:00",
            "distance_miles": 2475, "equipment_id": "N123AA", "customer_id": "C-9", "declared_value": 1200}
__all__ = ["FeaturesUnavailable", "ModelUnavailable", "SHIPMENT", "StubDelayScorer", "make_runtime"]
