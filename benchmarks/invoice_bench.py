"""Invoice decision speed, one at a time against a batch, in one run (docs/decisions.md, session 11).

In-process through ``decide_invoices`` (the endpoints' own path: idempotency look-up, scoring with the
champion invoice model and the Feast online reference data, policy, decision log, ``invoices_seen``),
on a throw-away SQLite decision log. The last ``rows + single`` invoices of the saved embedded world are
decided in receipt order, after the invoices received in the look-back window before them are stored as
seen (as ``serving.replay`` does), so the look-back features have their real history: first ``single``
invoices one request each, then the rest as one batch. Nothing here asserts: figures are printed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def run(*, rows: int = 1000, single: int = 20, step: Callable[[str], None] = lambda _: None) -> dict:
    from features.invoice_world import load_world
    from features.store import StoreSettings
    from serving.invoice_decisions import decide_invoices
    from serving.invoice_scoring import LOOKBACK
    from serving.replay import _invoice, store_as_seen
    from serving.runtime import build_runtime
    from serving.schemas import InvoiceIn

    world = load_world(Path(StoreSettings.from_env().repo_dir) / "world")
    heads = world.invoices.assign(received_at=world.invoices["received_at"].fillna(world.invoices["invoice_date"]))
    heads = heads.sort_values(["received_at", "invoice_id"]).reset_index(drop=True)
    chosen = heads.iloc[-(rows + single):]
    first = chosen["received_at"].min()
    earlier = heads[(heads["received_at"] < first) & (heads["received_at"] > first - LOOKBACK)]
    with tempfile.TemporaryDirectory(prefix="tollgate-invoice-bench-") as name:
        runtime = build_runtime(f"sqlite:///{name}/tollgate.db")
        step(f"storing the {len(earlier):,} invoices received in the {LOOKBACK.days} days before as seen")
        store_as_seen(runtime.engine, world, earlier)
        lines_of = dict(tuple(world.invoice_lines[world.invoice_lines["invoice_id"].isin(chosen["invoice_id"])]
                              .groupby("invoice_id")))
        bodies = [InvoiceIn.model_validate(_invoice(head, lines_of[head.invoice_id]))
                  for head in chosen.itertuples(index=False)]

        def decide(requests: list) -> float:
            started = time.perf_counter()
            decide_invoices(runtime.decisions, runtime.invoice_scorer, requests, header_key=None, caller=None)
            return time.perf_counter() - started

        step("warm-up (loads the champion invoice model and the online store)")
        decide([bodies[0].model_copy(update={"invoice_id": "BENCH-WARM-UP"})])
        step(f"{single} invoices one request each, then {rows:,} in one batch")
        alone = [decide([body]) for body in bodies[:single]]
        batch = decide(bodies[single:])
    one = statistics.median(alone) * 1000
    each = batch * 1000 / rows
    return {"invoice_single_p50_ms": round(one, 1), "invoice_single_count": single,
            "invoice_batch_rows": rows, "invoice_batch_seconds": round(batch, 2),
            "invoice_batch_ms_per_invoice": round(each, 2), "invoice_batch_speedup": round(one / each, 1)}
