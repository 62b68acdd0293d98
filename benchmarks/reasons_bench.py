"""Decision reasons: path attribution (what the service sends) against TreeSHAP, on the champion delay model.

Rows are the embedded world's shipments of its last ``days`` days (inside the held-out period), their
features built by the service's own scorer from the online store. Reported side by side, medians of
``repeats``: the time for one row and for 1,000 rows by each method, and how often the two agree on the
top reason and on the top five. Nothing here asserts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def run(*, days: int = 30, rows: int = 3000, repeats: int = 15, step: Callable[[str], None] = lambda _: None) -> dict:
    from features.assemble import model_columns
    from features.invoice_world import load_world
    from features.store import StoreSettings
    from serving.replay import _shipments
    from serving.runtime import build_runtime
    from serving.schemas import ShipmentIn

    step("loading the champion delay model and the embedded shipments")
    scorer = build_runtime("sqlite:///:memory:").delay_scorer()
    world = load_world(Path(StoreSettings.from_env().repo_dir) / "world")
    shipments = [ShipmentIn(**s).model_dump() for s in _shipments(world.shipment_facts, days)][:rows]
    x = scorer._matrix(model_columns(shipments, scorer._lookup(shipments)))  # noqa: SLF001 - the serving path
    booster, paths = scorer.model.model.booster_, scorer._paths  # noqa: SLF001

    step(f"timing both methods ({repeats} repeats)")
    one, thousand = x[:1], x[:1000]
    out = {
        "rows": len(x), "model_version": scorer.model.version,
        "path_ms_1_row": _median_ms(lambda: paths.contributions_of(paths.leaves(one)), repeats),
        "treeshap_ms_1_row": _median_ms(lambda: booster.predict(one, pred_contrib=True, num_threads=1), repeats),
        "path_ms_1000_rows": _median_ms(lambda: paths.contributions_of(paths.leaves(thousand)), repeats),
        "treeshap_ms_1000_rows": _median_ms(lambda: booster.predict(thousand, pred_contrib=True, num_threads=1),
                                            max(3, repeats // 5)),
    }
    out["speedup_1000_rows"] = out["treeshap_ms_1000_rows"] / out["path_ms_1000_rows"]

    step("agreement on the top reasons")
    path = np.abs(paths.contributions_of(paths.leaves(x)))
    shap = np.abs(booster.predict(x, pred_contrib=True, num_threads=1)[:, :-1])
    top_path, top_shap = np.argsort(-path, axis=1)[:, :5], np.argsort(-shap, axis=1)[:, :5]
    out["top1_agreement"] = float(np.mean(top_path[:, 0] == top_shap[:, 0]))
    out["top5_overlap"] = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top_path, top_shap, strict=True)]))
    out["top1_in_shap_top3"] = float(np.mean([a in b[:3] for a, b in zip(top_path[:, 0], top_shap, strict=True)]))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
