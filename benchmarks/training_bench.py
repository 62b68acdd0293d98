"""Training and materialization speed (issue 2 targets: train <= 120 s, materialize <= 60 s).

Runs the real job on the embedded data against a throw-away MLflow store and Feast repo, ``repeats``
times, and reports medians. Nothing here asserts: figures are printed and compared by people.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path


def run(*, repeats: int = 1, step: Callable[[str], None] = lambda _: None) -> dict:
    from features.store import StoreSettings
    from training.delay_job import run_delay_job
    from training.features_job import materialize_features
    from training.spec import load_spec

    train, materialize, last = [], [], {}
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            settings = StoreSettings(repo_dir=Path(tmp, "repo"))
            step(f"run {i + 1}/{repeats}: tollgate train delay")
            last = run_delay_job(load_spec("delay"), settings=settings,
                                 tracking_uri=f"sqlite:///{tmp}/mlflow.db", step=step)
            train.append(last["train_seconds"])
            step(f"run {i + 1}/{repeats}: materialize")
            materialize.append(materialize_features(settings=settings, step=step)["materialize_seconds"])
    return {"repeats": repeats, "train_seconds_median": statistics.median(train),
            "materialize_seconds_median": statistics.median(materialize),
            "train_target_seconds": 120, "materialize_target_seconds": 60,
            "test_auc": last.get("test_auc"), "test_pr_auc": last.get("test_pr_auc"), "ece": last.get("ece")}
