"""Invoice decisions with a really trained smoke model and reference data loaded through Feast."""

import os

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.invoice_world import save_world
from features.store import StoreSettings
from serving.app import create_app
from serving.auth import Role, create_key
from serving.runtime import build_runtime
from training import tracking
from training.invoice_job import load_invoice_world, run_invoice_job
from training.invoice_spec import load_invoice_spec
from training.load_job import load_reference

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_history):
    """A champion invoice model and the reference data online, for the module."""
    root = tmp_path_factory.mktemp("invoices")
    saved = {k: os.environ.get(k) for k in ("TOLLGATE_MLFLOW_URI", "TOLLGATE_FEAST_REPO")}
    os.environ["TOLLGATE_MLFLOW_URI"] = f"sqlite:///{root}/mlflow.db"  # a child process inherits them
    os.environ["TOLLGATE_FEAST_REPO"] = str(root / "repo")
    settings = StoreSettings(repo_dir=root / "repo")
    spec = load_invoice_spec("invoice_smoke")
    run_invoice_job(spec, settings=settings, tracking_uri=os.environ["TOLLGATE_MLFLOW_URI"])
    assert tracking.promote("invoice_discrepancy").promoted
    world, _ = load_invoice_world(spec, history=embedded_history)
    files = save_world(world, root / "world")
    for kind, name in (("contracts", "contracts"), ("shipments", "shipment_facts"), ("fuel-index", "fuel_index")):
        load_reference(kind, files[name], settings=settings)
    yield root, world
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module", params=["thread", "process"])
def world_api(request, trained):
    """The API deciding invoices on the worker's thread pool, and through the invoice process (as the
    service does, serving/invoice_process.py): every test below runs both ways, on a log of its own."""
    root, world = trained
    runtime = build_runtime(f"sqlite:///{root}/tollgate-{request.param}.db",
                            invoice_process=request.param == "process")
    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="t")
    client = TestClient(create_app(lambda: runtime))
    yield client, {"Authorization": f"Bearer {key}"}, world, runtime
    if runtime.invoice_process is not None:
        runtime.invoice_process.close()


def _payload(world, source: str, **changes) -> dict:
    head = world.invoices.set_index("invoice_id").loc[source]
    lines = world.invoice_lines[world.invoice_lines["invoice_id"] == source]
    body = {"invoice_id": source, "carrier": head["carrier"], "shipment_id": head["shipment_id"],
            "invoice_date": pd.Timestamp(head["invoice_date"]).isoformat(),
            "received_at": pd.Timestamp(head["received_at"]).isoformat(), "currency": "USD",
            "lines": [{"code": c.upper(), "amount": float(a)} for c, a in zip(lines["code"], lines["amount"])],
            "total": float(head["total"])}
    if pd.notna(head["billed_weight_kg"]):
        body["billed_weight_kg"] = float(head["billed_weight_kg"])
    return {**body, **changes}


def _clean_invoice(world) -> str:
    labels = world.labels.set_index("invoice_id")
    inv = world.invoices.set_index("invoice_id")
    clean = labels[(labels["true_discrepancy"] == "clean") & (labels["scenario"] == "")].index
    late = inv.loc[clean][inv.loc[clean, "invoice_date"] >= "2013-10-01"]
    return late.sort_values("total").index[len(late) // 2]


def test_clean_invoice_is_scored_clean_and_a_resubmission_is_not_approved(world_api):
    client, headers, world, _ = world_api
    invoice_id = _clean_invoice(world)
    r = client.post("/invoices/decide", json=_payload(world, invoice_id), headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["shipment_known"] and body["contract_known"] and not body["degraded"], {k: body[k] for k in ("degraded", "degraded_reason", "shipment_known", "contract_known", "scores")}
    assert body["scores"]["predicted_class"] == "clean"
    assert body["model_name"] == "invoice_discrepancy" and body["policy_id"] == "invoice"
    copy = client.post("/invoices/decide", json=_payload(world, invoice_id, invoice_id=invoice_id + "X"),
                       headers=headers).json()
    assert copy["scores"]["predicted_class"] == "duplicate"
    assert copy["outcome"] != "approve"


def test_linehaul_twenty_percent_over_contract_is_never_approved(world_api):
    client, headers, world, _ = world_api
    invoice_id = _clean_invoice(world)
    body = _payload(world, invoice_id, invoice_id="OVER" + invoice_id[-6:])
    for line in body["lines"]:
        if line["code"] == "LINEHAUL":
            line["amount"] = round(line["amount"] * 1.2, 2)
    body["total"] = round(sum(line["amount"] for line in body["lines"]), 2)
    r = client.post("/invoices/decide", json=body, headers=headers).json()
    assert r["scores"]["predicted_class"] != "clean" and r["outcome"] != "approve"


def test_unknown_shipment_is_held_and_bad_invoices_name_the_field(world_api):
    client, headers, world, _ = world_api
    body = _payload(world, _clean_invoice(world), invoice_id="GHOST1", shipment_id="NO-SUCH-SHIPMENT")
    r = client.post("/invoices/decide", json=body, headers=headers).json()
    assert r["outcome"] == "hold" and not r["shipment_known"]
    assert "approve_invoice" not in [a["type"] for a in r["actions"]]
    bad = {**body, "invoice_id": "BAD1", "total": body["total"] + 5}
    resp = client.post("/invoices/decide", json=bad, headers=headers)
    assert resp.status_code == 422 and "sum of the lines" in resp.text
    bad_code = {**body, "invoice_id": "BAD2", "lines": [{"code": "TIP", "amount": body["total"]}]}
    assert "unknown charge code" in client.post("/invoices/decide", json=bad_code, headers=headers).text
    assert client.post("/invoices/decide", json={**body, "currency": "EUR"}, headers=headers).status_code == 422


def test_first_start_replay_decides_the_last_days_once_through_the_api(world_api, tmp_path):
    from sqlalchemy import func, select

    from serving.db import decisions, review_cases
    from serving.replay import replay

    _, _, world, _ = world_api
    save_world(world, tmp_path / "world")
    runtime = build_runtime(f"sqlite:///{tmp_path}/replay.db")
    result = replay(runtime, days=2, max_invoices=25, world_dir=tmp_path / "world")
    assert result["replayed"] and result["replayed_shipments"] > 0 and result["replayed_invoices"] == 25
    with runtime.engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(decisions)).scalar_one()
        cases = conn.execute(select(func.count()).select_from(review_cases)).scalar_one()
    assert logged == result["replayed_shipments"] + 25
    assert sum(v for k, v in result.items() if k.startswith(("shipment_", "invoice_"))) == logged
    assert result["open_cases"] == cases
    assert replay(runtime, world_dir=tmp_path / "world") == {
        "replayed": False, "note": "the decision log is not empty: nothing replayed"}


def test_a_batch_is_scored_together_and_decides_a_repeated_invoice_once(world_api):
    from sqlalchemy import func, select

    from serving.db import decisions, invoices_seen

    client, headers, world, runtime = world_api
    labels = world.labels.set_index("invoice_id")
    clean = labels[(labels["true_discrepancy"] == "clean") & (labels["scenario"] == "")].index
    heads = world.invoices.set_index("invoice_id").loc[clean]
    late = heads[heads["invoice_date"] >= "2013-10-01"].sort_values("total")
    source = late.index[len(late) // 3]  # not the invoice the other tests decide
    original = _payload(world, source, invoice_id="BATCH-" + source)
    copy = _payload(world, source, invoice_id="BATCH-" + source + "-COPY")
    ghost = _payload(world, source, invoice_id="BATCH-GHOST", shipment_id="NO-SUCH-SHIPMENT")
    resent = {**original, "lines": [*original["lines"], {"code": "FUEL", "amount": 1.0}],
              "total": round(original["total"] + 1.0, 2)}  # the same invoice id, another payload
    r = client.post("/invoices/decide/batch", json={"invoices": [original, copy, ghost, original, resent]},
                    headers=headers)
    assert r.status_code == 200, r.text
    first, duplicate, unknown, again, other = r.json()["decisions"]
    assert duplicate["scores"]["predicted_class"] == "duplicate" and duplicate["outcome"] != "approve"
    assert unknown["outcome"] == "hold" and not unknown["shipment_known"]
    assert again == first  # one payload given twice: decided once
    assert other["decision_id"] != first["decision_id"] and other["subject_id"] == first["subject_id"]
    ids = [original["invoice_id"], copy["invoice_id"], ghost["invoice_id"]]
    with runtime.engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(decisions).where(decisions.c.subject_id.in_(ids)))
        assert logged.scalar_one() == 4  # original (twice: two payloads), copy, ghost
        kept = conn.execute(select(invoices_seen.c.invoice_id, invoices_seen.c.total).where(
            invoices_seen.c.invoice_id.in_(ids))).all()
    assert sorted(kept) == sorted([(original["invoice_id"], original["total"]), (copy["invoice_id"], copy["total"]),
                                   (ghost["invoice_id"], ghost["total"])])  # the first form is kept
    replay = client.post("/invoices/decide/batch", json={"invoices": [original, copy]}, headers=headers).json()
    assert replay["decisions"] == [first, duplicate]  # idempotent: the recorded decisions again
    keyed = {**headers, "Idempotency-Key": "batch-key-1"}
    one, two, three = (_payload(world, source, invoice_id=f"KEYED-{n}") for n in (1, 2, 3))
    assert client.post("/invoices/decide/batch", json={"invoices": [one, two]}, headers=keyed).status_code == 200
    changed = {**two, "invoice_date": "2013-12-31"}
    clash = client.post("/invoices/decide/batch", json={"invoices": [one, changed, three]}, headers=keyed)
    assert clash.status_code == 409, clash.text
    with runtime.engine.connect() as conn:  # settled before anything was scored or written
        assert not conn.execute(select(decisions.c.decision_id).where(decisions.c.subject_id == "KEYED-3")).all()
        assert not conn.execute(select(invoices_seen.c.invoice_id).where(invoices_seen.c.invoice_id == "KEYED-3")).all()


@pytest.fixture(scope="module")
def process_api(trained):
    """The API through the invoice process only, on a log of its own, for the tests that kill it."""
    root, world = trained
    runtime = build_runtime(f"sqlite:///{root}/tollgate-killed.db", invoice_process=True)
    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="t")
    yield TestClient(create_app(lambda: runtime)), {"Authorization": f"Bearer {key}"}, world, runtime
    runtime.invoice_process.close()


def _killing_submit(monkeypatch, process, times: int) -> list[int]:
    """Make the invoice process die right after the next ``times`` requests are handed to it."""
    import signal

    killed: list[int] = []
    executor = process._executor

    def doomed():
        pool = executor()
        submit = pool.submit

        def submit_then_kill(*args):
            future = submit(*args)
            if len(killed) < times:
                for pid in process.child_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            return future
        pool.submit = submit_then_kill
        return pool
    monkeypatch.setattr(process, "_executor", doomed)
    return killed


def test_a_warmed_invoice_process_has_the_champion_loaded_and_decides_the_next_invoice(process_api):
    client, headers, world, runtime = process_api
    process = runtime.invoice_process
    process.close()  # a child of its own, whatever the tests before did
    warmed = process.warm().result(timeout=120)
    assert warmed["invoice_model"] == "invoice_discrepancy/1" and process.child_pids() == [warmed["pid"]]
    assert runtime.invoices_ready()
    r = client.post("/invoices/decide", json=_payload(world, _clean_invoice(world), invoice_id="PROC-WARMED"),
                    headers=headers)
    assert r.status_code == 200 and r.json()["model_version"] == "1", r.text
    assert process.child_pids() == [warmed["pid"]]  # decided by the child that was warmed


def test_the_invoice_process_is_replaced_when_it_dies_and_nothing_is_decided_twice(process_api, monkeypatch):
    import psutil
    from sqlalchemy import func, select

    from serving.db import decisions

    client, headers, world, runtime = process_api
    process = runtime.invoice_process
    warm = client.post("/invoices/decide", json=_payload(world, _clean_invoice(world), invoice_id="PROC-WARM"),
                       headers=headers)
    assert warm.status_code == 200, warm.text
    (child,) = process.child_pids()
    assert child != os.getpid()
    assert psutil.Process(child).nice() == psutil.Process().nice() + 5  # TOLLGATE_INVOICE_NICE's default
    killed = _killing_submit(monkeypatch, process, times=1)
    body = _payload(world, _clean_invoice(world), invoice_id="PROC-1")
    r = client.post("/invoices/decide", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert killed == [child] and process.child_pids() and process.child_pids() != [child]  # sent again
    again = client.post("/invoices/decide", json=body, headers=headers)
    assert again.json() == r.json()
    with runtime.engine.connect() as conn:
        count = select(func.count()).select_from(decisions).where(decisions.c.subject_id == "PROC-1")
        assert conn.execute(count).scalar_one() == 1


def test_an_invoice_process_dying_twice_on_a_request_is_a_503_with_nothing_decided(process_api, monkeypatch):
    from sqlalchemy import select

    from serving.db import decisions

    client, headers, world, runtime = process_api
    warm = client.post("/invoices/decide", json=_payload(world, _clean_invoice(world), invoice_id="PROC-WARM2"),
                       headers=headers)
    assert warm.status_code == 200, warm.text
    killed = _killing_submit(monkeypatch, runtime.invoice_process, times=2)
    r = client.post("/invoices/decide", json=_payload(world, _clean_invoice(world), invoice_id="PROC-2"),
                    headers=headers)
    assert r.status_code == 503 and r.json()["error"] == "InvoiceWorkerUnavailable", r.text
    assert len(killed) == 2
    with runtime.engine.connect() as conn:
        assert not conn.execute(select(decisions.c.decision_id).where(decisions.c.subject_id == "PROC-2")).all()
    monkeypatch.undo()
    later = client.post("/invoices/decide", json=_payload(world, _clean_invoice(world), invoice_id="PROC-2"),
                        headers=headers)
    assert later.status_code == 200, later.text
