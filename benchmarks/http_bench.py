"""Decision speed over HTTP (issue 4 §4), measured side by side in one run.

What it starts, all on loopback, all really:
- ``bentoml serve serving.service:Tollgate`` with its default workers, the champion models of this
  checkout's MLflow registry, this checkout's Feast online store, and a fresh SQLite decision log in a
  temporary directory (so the run writes every decision it makes, as in production);
- ``wrk`` (Debian's package; ``.ci/ensure-apt`` installs it) as the load generator, in its own process,
  POSTing real December 2013 flights of the embedded history, each with a new shipment id;
- after Tollgate is stopped, ``mlflow models serve`` (2 workers) on the same champion delay model, the
  peer a user would pick instead, answering bare predictions for one feature row per request.

Reported (medians where repeated; nothing here asserts, figures are compared by people):
``p50_ms_c1``, ``p99_ms_c8``, ``rps_c8``, ``mlflow_rps_c8``, ``ratio_vs_mlflow``, ``batch_rows_per_s``,
``soak_rss_growth_pct``, ``soak_p99_first_ms``, ``soak_p99_last_ms`` and the details behind them.
The soak sends about ``soak_requests`` decisions at concurrency 8 in four quarters; RSS is the sum over
the service's process tree after warm-up and after the last quarter; each quarter's p99 and the CPU
time the service spent per decision in it are listed too. Batches of 1,000 shipments are
sent one at a time (``batch_rows_per_s``) and then two at a time, one per default worker
(``batch_rows_per_s_parallel``). Last, shipments at concurrency 8 are measured alone and then beside a
client keeping one invoice decision in flight (``mixed_*``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from serving.launch import ROOT, Launched, free_port

LUA = Path(__file__).with_name("wrk_post.lua")
LOGS = ROOT / "var" / "bench"
"""The servers' logs of the last run (the decision log database itself is temporary)."""
BODIES = 2000


class BenchError(RuntimeError):
    pass


def _post(url: str, body: bytes, headers: dict, timeout: float = 120.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wrk(url: str, *, bodies: Path, key: str, connections: int, seconds: float, strict: bool = True) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (make bench installs it: .ci/ensure-debian-package wrk wrk)")
    threads = min(2, connections)
    out = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                          "--timeout", "10s", "-s", str(LUA), url],
                         env={**os.environ, "TG_BODIES": str(bodies), "TG_AUTH": key},
                         capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("TGRESULT ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}")
    result = json.loads(line.removeprefix("TGRESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    if strict and (result["non_2xx"] or result["socket_errors"]):
        raise BenchError(f"{url}: {result['non_2xx']} non-2xx answers, {result['socket_errors']} socket "
                         f"errors out of {result['requests']} (a benchmark of failures is not a benchmark)")
    return result


def shipment_bodies(count: int = BODIES) -> list[dict]:
    """Real flights of the embedded history's last weeks as dispatch requests (ids filled in by wrk)."""
    from features.history import load_embedded_history

    history = load_embedded_history()
    recent = history[history["scheduled_departure"] >= history["scheduled_departure"].max() - _days(21)]
    recent = recent.dropna(subset=["scheduled_arrival"]).sample(n=min(count, len(recent)), random_state=7)
    bodies = []
    for row in recent.itertuples(index=False):
        body = {"shipment_id": "BENCH-{ID}", "carrier": row.carrier, "origin": row.origin,
                "destination": row.destination, "scheduled_departure": row.scheduled_departure.isoformat(),
                "scheduled_arrival": row.scheduled_arrival.isoformat(), "distance_miles": float(row.distance_miles)}
        if isinstance(row.equipment_id, str) and row.equipment_id:
            body["equipment_id"] = row.equipment_id
        bodies.append(body)
    return bodies


def _days(n: int):
    import pandas as pd

    return pd.Timedelta(days=n)


def _require_champions(names: tuple[str, ...] = ("delay_risk", "invoice_discrepancy")) -> None:
    """Refuse to start without the models the bench measures (else: a service never ready, 240 s later)."""
    from mlflow import MlflowClient

    from serving.runtime import mlflow_uri
    from training.tracking import CHAMPION, alias_version

    uri = mlflow_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    missing = [name for name in names if alias_version(client, name, CHAMPION) is None]
    if missing:
        raise BenchError(f"no champion {' or '.join(missing)} in {uri}: train and promote first "
                         "(make bootstrap, or tollgate bootstrap)")


def _tollgate(tmp: Path) -> tuple[Launched, str]:
    from serving.auth import Role, create_key
    from serving.db import create_schema, make_engine

    url = f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    create_schema(engine)
    key = create_key(engine, role=Role.ORCHESTRATOR, name="bench")
    engine.dispose()
    env = {**os.environ, "TOLLGATE_DATABASE_URL": url, "BENTOML_HOME": str(tmp / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "true"}
    return Launched.bentoml(env=env, log=LOGS / "tollgate.log").wait(timeout=240), key


def _mlflow_row(bodies: list[dict]) -> dict:
    """One real feature row as the pyfunc model takes it, built by the service's own scorer."""
    import pandas as pd

    from features.assemble import model_columns
    from serving.runtime import build_runtime
    from serving.schemas import ShipmentIn

    scorer = build_runtime("sqlite:///:memory:").delay_scorer()
    rows = [ShipmentIn(**{**bodies[0], "shipment_id": "MLFLOW-1"}).model_dump()]
    frame = pd.DataFrame(model_columns(rows, scorer._lookup(rows)))  # noqa: SLF001 - the serving lookup
    return json.loads(frame.to_json(orient="split", index=False))


def _mlflow() -> Launched:
    from serving.runtime import mlflow_uri

    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri(), "MLFLOW_REGISTRY_URI": mlflow_uri()}
    mlflow, port = str(Path(sys.executable).with_name("mlflow")), free_port()
    return Launched([mlflow, "models", "serve", "-m", "models:/delay_risk@champion", "--env-manager", "local",
                     "-h", "127.0.0.1", "-p", str(port), "-w", "2"], env=env, log=LOGS / "mlflow.log",
                    port=port).wait("/ping", timeout=240)


def _batch_payload(bodies: list[dict], rows: int, r: int) -> bytes:
    batch = [{**bodies[(r * rows + i) % len(bodies)], "shipment_id": f"BATCH-{time.time_ns()}-{r}-{i}"}
             for i in range(rows)]
    return json.dumps({"shipments": batch}).encode()


def _batch(url: str, bodies: list[dict], key: str, *, rows: int, repeats: int, in_flight: int = 2) -> dict:
    """``rows``-row batches, fresh shipments each: first one request at a time (``batch_rows_per_s``, the
    median of ``repeats``), then ``in_flight`` at a time, as many as the service has workers
    (``batch_rows_per_s_parallel``: all rows over the wall time of ``repeats`` rounds)."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": f"Bearer {key}"}

    def post(payload: bytes) -> None:
        status, body = _post(url, payload, headers)
        if status != 200:
            raise BenchError(f"batch answered {status}: {body[:300]!r}")

    rates = []
    for r in range(repeats):
        payload = _batch_payload(bodies, rows, r)
        started = time.perf_counter()
        post(payload)
        rates.append(rows / (time.perf_counter() - started))
    payloads = [_batch_payload(bodies, rows, repeats + r) for r in range(repeats * in_flight)]
    with ThreadPoolExecutor(in_flight) as pool:
        started = time.perf_counter()
        list(pool.map(post, payloads))
        parallel = len(payloads) * rows / (time.perf_counter() - started)
    return {"batch_rows": rows, "batch_repeats": repeats, "batch_rows_per_s": statistics.median(rates),
            "batch_in_flight": in_flight, "batch_rows_per_s_parallel": parallel}


def run(*, seconds: float = 20.0, soak_requests: int = 200_000, batch_repeats: int = 7,
        step: Callable[[str], None] = lambda _: None) -> dict:
    _require_champions()
    bodies = shipment_bodies()
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as name:
        tmp = Path(name)
        body_file = tmp / "bodies.jsonl"
        body_file.write_text("".join(json.dumps(b) + "\n" for b in bodies))
        step("starting bentoml serve (default workers, fresh SQLite decision log)")
        server, key = _tollgate(tmp)
        decide = f"{server.base}/v1/shipments/decide"
        out: dict = {"service": "tollgate", "seconds_per_run": seconds}
        try:
            step("warm-up at concurrency 8 (each worker loads the models on its first request)")
            warm = _wrk(decide, bodies=body_file, key=key, connections=8, seconds=max(10.0, seconds / 2),
                        strict=False)
            out["warmup_failed_requests"] = warm["non_2xx"] + warm["socket_errors"]
            step("concurrency 1")
            c1 = _wrk(decide, bodies=body_file, key=key, connections=1, seconds=seconds)
            step("concurrency 8")
            c8 = _wrk(decide, bodies=body_file, key=key, connections=8, seconds=seconds)
            out |= {"p50_ms_c1": c1["p50_us"] / 1000, "p99_ms_c1": c1["p99_us"] / 1000,
                    "p50_ms_c8": c8["p50_us"] / 1000, "p99_ms_c8": c8["p99_us"] / 1000, "rps_c8": c8["rps"]}
            step("batch endpoint, 1,000 shipments a request")
            out |= _batch(f"{decide}/batch", bodies, key, rows=1000, repeats=batch_repeats)
            out |= _soak(server, decide, body_file, key, total=soak_requests, rps=c8["rps"], step=step)
            step("concurrency 8 alone, then beside one invoice at a time")
            out |= _mixed(server.base, body_file, key, seconds=seconds)
        finally:
            server.stop()
        step("starting mlflow models serve (2 workers)")
        row = _mlflow_row(bodies)
        peer_bodies = tmp / "mlflow.jsonl"
        peer_bodies.write_text(json.dumps({"dataframe_split": row}) + "\n")
        peer = _mlflow()
        try:
            invocations = f"{peer.base}/invocations"
            status, answer = _post(invocations, peer_bodies.read_bytes(), {})
            if status != 200:
                raise BenchError(f"mlflow answered {status}: {answer[:300]!r}")
            _wrk(invocations, bodies=peer_bodies, key="", connections=8, seconds=max(5.0, seconds / 2))
            peer_c8 = _wrk(invocations, bodies=peer_bodies, key="", connections=8, seconds=seconds)
        finally:
            peer.stop()
        out |= {"mlflow_rps_c8": peer_c8["rps"], "mlflow_p50_ms_c8": peer_c8["p50_us"] / 1000,
                "mlflow_p99_ms_c8": peer_c8["p99_us"] / 1000}
        out["ratio_vs_mlflow"] = out["rps_c8"] / out["mlflow_rps_c8"]
        out["targets"] = {"p50_ms_c1": 3, "p99_ms_c8": 25, "rps_c8": 600, "ratio_vs_mlflow": 4,
                          "batch_rows_per_s": 20_000, "soak_rss_growth_pct": 5}
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def invoice_bodies(count: int = 400) -> list[dict]:
    """The last invoices of the saved embedded world as requests (each sent under a new invoice id)."""
    from features.invoice_world import load_world
    from features.store import StoreSettings
    from serving.replay import _invoice

    world = load_world(Path(StoreSettings.from_env().repo_dir) / "world")
    heads = world.invoices.sort_values(["invoice_date", "invoice_id"]).tail(count)
    lines = world.invoice_lines[world.invoice_lines["invoice_id"].isin(heads["invoice_id"])]
    lines_of = dict(tuple(lines.groupby("invoice_id")))
    return [json.loads(json.dumps(_invoice(head, lines_of[head.invoice_id]), default=str))
            for head in heads.itertuples(index=False)]


def _mixed(base: str, bodies: Path, key: str, *, seconds: float) -> dict:
    """Shipments at concurrency 8 alone, then again while one invoice after another is decided (a
    client keeping one invoice request in flight): what invoices cost the shipment decisions' tail
    (docs/decisions.md, session 12). The invoice process of each worker is started before either."""
    import threading

    headers = {"Authorization": f"Bearer {key}"}
    invoices, url = invoice_bodies(), f"{base}/v1/invoices/decide"
    sent = 0

    def post_invoice() -> float:
        nonlocal sent
        body = {**invoices[sent % len(invoices)], "invoice_id": f"MIX-{time.time_ns()}-{sent}"}
        sent += 1
        started = time.perf_counter()
        status, answer = _post(url, json.dumps(body).encode(), headers)
        if status != 200:
            raise BenchError(f"invoice answered {status}: {answer[:300]!r}")
        return time.perf_counter() - started

    for _ in range(4):  # both workers' invoice processes started and their models loaded
        post_invoice()
    decide = f"{base}/v1/shipments/decide"
    alone = _wrk(decide, bodies=bodies, key=key, connections=8, seconds=seconds)
    stop, took, failed = threading.Event(), [], []

    def invoice_client() -> None:
        try:
            while not stop.is_set():
                took.append(post_invoice())
        except BenchError as exc:
            failed.append(exc)
    client = threading.Thread(target=invoice_client)
    client.start()
    try:
        beside = _wrk(decide, bodies=bodies, key=key, connections=8, seconds=seconds)
    finally:
        stop.set()
        client.join()
    if failed:
        raise failed[0]
    return {"mixed_alone_rps_c8": alone["rps"], "mixed_alone_p99_ms_c8": alone["p99_us"] / 1000,
            "mixed_rps_c8": beside["rps"], "mixed_p99_ms_c8": beside["p99_us"] / 1000,
            "mixed_invoices_per_s": len(took) / seconds,
            "mixed_invoice_p50_ms": statistics.median(took) * 1000 if took else None}


def _soak(server: Launched, url: str, bodies: Path, key: str, *, total: int, rps: float,
          step: Callable[[str], None]) -> dict:
    """About ``total`` decisions in four quarters at concurrency 8; RSS after warm-up and at the end. wrk
    runs for a time, not a count: the first quarter is timed from ``rps`` (the c8 run's), each later one
    from the rate of the quarter before it and what is left to send."""
    rss_start = server.rss()
    quarters, cpu_ms = [], []
    for q in range(4):
        left = total - sum(done["requests"] for done in quarters)
        rate = quarters[-1]["rps"] if quarters else rps
        quarter_seconds = max(2.0, left / (4 - q) / max(rate, 1.0))
        step(f"soak quarter {q + 1}/4 (~{quarter_seconds:.0f} s)")
        cpu = server.cpu_seconds()
        quarters.append(_wrk(url, bodies=bodies, key=key, connections=8, seconds=quarter_seconds))
        cpu_ms.append(1000 * (server.cpu_seconds() - cpu) / max(quarters[-1]["requests"], 1))
    rss_end = server.rss()
    return {"soak_requests": sum(q["requests"] for q in quarters),
            "soak_rss_start_mb": rss_start / 2**20, "soak_rss_end_mb": rss_end / 2**20,
            "soak_rss_growth_pct": 100.0 * (rss_end - rss_start) / rss_start if rss_start else None,
            "soak_p99_first_ms": quarters[0]["p99_us"] / 1000, "soak_p99_last_ms": quarters[-1]["p99_us"] / 1000,
            "soak_rps_quarters": [round(q["rps"], 1) for q in quarters],
            "soak_p99_ms_quarters": [round(q["p99_us"] / 1000, 1) for q in quarters],
            # the service's CPU per decision: on a shared machine it moves with the neighbours' load,
            # so a run says whether its machine slowed down (docs/decisions.md, session 8)
            "soak_cpu_ms_per_decision_quarters": [round(c, 2) for c in cpu_ms]}
