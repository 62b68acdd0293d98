"""Where a shipment batch is decided: on the worker's threads, one at a time; a second one in flight in
the invoice process when it can take it at once (serving/runtime.py, serving/invoice_process.py).

The side process here is a stand-in that records what it was asked; the real child deciding batches is
in tests/serving/test_end_to_end.py (a trained model, bentoml serve, PostgreSQL)."""

from __future__ import annotations

import json

import msgspec
import prometheus_client
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.app import create_app
from serving.auth import Role, create_key
from serving.db import decisions
from serving.metrics import labels_of, observe
from serving.schemas import ShipmentIn
from tests.serving.conftest import SHIPMENT, StubDelayScorer, make_runtime


class SideProcess:
    """Answers a batch with one canned decision per shipment, or declines (``None``) when busy."""

    def __init__(self, *, busy: bool = False) -> None:
        self.busy, self.asked = busy, []

    def try_decide_shipments(self, requests, *, header_key, caller):
        self.asked.append(([r.shipment_id for r in requests], header_key, caller))
        if self.busy:
            return None
        labels = [{"kind": "shipment", "outcome": "approve", "policy_version": "side", "model_version": "7",
                   "degraded": False, "degraded_reason": None, "actions": []} for _ in requests]
        return labels, [msgspec.Raw(json.dumps({"subject_id": r.shipment_id, "by": "side"}).encode())
                        for r in requests]


@pytest.fixture
def runtime(tmp_path):
    return make_runtime(f"sqlite:///{tmp_path}/t.db", StubDelayScorer({"AA": 0.72, "DL": 0.31, "UA": 0.45}))


def _requests(n: int, prefix: str = "B") -> list[ShipmentIn]:
    return [ShipmentIn(**{**SHIPMENT, "shipment_id": f"{prefix}-{i}"}) for i in range(n)]


def _logged(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(decisions)).scalar_one()


def test_a_batch_alone_is_decided_by_the_worker_and_never_asks_the_side_process(runtime):
    runtime.invoice_process = side = SideProcess()
    done, texts, where = runtime.decide_shipment_batch(_requests(3), header_key=None, caller="k1")
    assert where == "worker" and side.asked == [] and _logged(runtime) == 3
    assert [json.loads(bytes(t))["subject_id"] for t in texts] == ["B-0", "B-1", "B-2"]
    assert [d["subject_id"] for d in done] == ["B-0", "B-1", "B-2"]
    assert not runtime._batch_slot.locked()  # given back


def test_a_batch_arriving_while_another_is_decided_goes_to_the_side_process(runtime):
    runtime.invoice_process = side = SideProcess()
    with runtime._batch_slot:  # another batch in flight on this worker
        done, texts, where = runtime.decide_shipment_batch(_requests(2), header_key="idem", caller="k1")
    assert where == "side_process" and side.asked == [(["B-0", "B-1"], "idem", "k1")]
    assert [json.loads(bytes(t))["by"] for t in texts] == ["side", "side"] and len(done) == 2
    assert _logged(runtime) == 0  # the side process records them, not the worker


@pytest.mark.parametrize("side", [None, SideProcess(busy=True)], ids=["no side process", "side process busy"])
def test_with_no_idle_side_process_the_second_batch_is_decided_by_the_worker(runtime, side):
    runtime.invoice_process = side
    with runtime._batch_slot:
        done, texts, where = runtime.decide_shipment_batch(_requests(2), header_key=None, caller=None)
    assert where == "worker" and _logged(runtime) == 2 and [d["subject_id"] for d in done] == ["B-0", "B-1"]
    assert side is None or len(side.asked) == 1


def test_a_failing_batch_gives_the_worker_slot_back(runtime):
    runtime.invoice_process = side = SideProcess()
    runtime.decisions.decide_shipments = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        runtime.decide_shipment_batch(_requests(1), header_key=None, caller=None)
    assert not runtime._batch_slot.locked() and side.asked == []


def _batches(decided_in: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value("tollgate_shipment_batches_total",
                                                       {"decided_in": decided_in}) or 0.0


def test_the_api_answers_with_what_the_side_process_decided_and_counts_where(runtime):
    runtime.invoice_process = SideProcess()
    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="o")
    client = TestClient(create_app(lambda: runtime))
    headers = {"Authorization": f"Bearer {key}"}
    batch = {"shipments": [{**SHIPMENT, "shipment_id": f"API-{i}"} for i in range(2)]}
    before = _batches("worker"), _batches("side_process")
    alone = client.post("/shipments/decide/batch", json=batch, headers=headers)
    assert alone.status_code == 200 and [d["subject_id"] for d in alone.json()["decisions"]] == ["API-0", "API-1"]
    assert "by" not in alone.json()["decisions"][0]
    with runtime._batch_slot:
        beside = client.post("/shipments/decide/batch", json=batch, headers=headers)
    assert beside.status_code == 200 and beside.json() == {"decisions": [{"subject_id": "API-0", "by": "side"},
                                                                          {"subject_id": "API-1", "by": "side"}]}
    assert (_batches("worker") - before[0], _batches("side_process") - before[1]) == (1, 1)


def test_what_the_side_process_sends_for_metrics_counts_as_the_whole_decision(runtime):
    done, _, _ = runtime.decide_shipment_batch(_requests(4, "M") + [ShipmentIn(**{**SHIPMENT, "shipment_id": "M-x",
                                                                                 "carrier": "ZZ"})],
                                               header_key=None, caller=None)
    names = ("tollgate_decisions_total", "tollgate_actions_total", "tollgate_degraded_decisions_total")

    def samples() -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for metric in prometheus_client.REGISTRY.collect()
                for s in metric.samples if s.name in names}

    def counted(batch) -> dict:
        before = samples()
        observe(batch)
        return {k: v - before.get(k, 0.0) for k, v in samples().items() if v != before.get(k, 0.0)}

    whole = counted(done)
    assert whole and counted([labels_of(d) for d in done]) == whole
    assert set(labels_of(done[0])) == {"kind", "outcome", "policy_version", "model_version", "degraded",
                                       "degraded_reason", "actions"}
