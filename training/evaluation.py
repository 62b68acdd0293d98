"""Honest metrics on the held-out period, with the baselines computed in the same run."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models.calibration import expected_calibration_error


def precision_at_top(y: np.ndarray, p: np.ndarray, fraction: float = 0.10) -> float:
    """Share of positives among the ``fraction`` highest-scored rows."""
    k = max(1, int(round(len(p) * fraction)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(np.mean(y[top]))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    ok = ~np.isnan(score)
    filled = np.where(ok, score, np.nanmean(score) if ok.any() else 0.0)
    return float(roc_auc_score(y, filled)) if len(np.unique(y)) > 1 else float("nan")


def evaluate_delay(model, data) -> dict[str, float]:
    """Test metrics of the model and of two baselines (base rate; trailing lane late rate alone)."""
    y_test = data.label.to_numpy()[data.test]
    y_train = data.label.to_numpy()[data.train]
    p = model.predict_proba(data.features[data.test])
    base_rate = float(y_train.mean())
    lane = data.features["lane_late_rate_30d"].to_numpy(dtype=float)[data.test]
    return {
        "test_auc": _auc(y_test, p),
        "test_pr_auc": float(average_precision_score(y_test, p)),
        "brier": float(brier_score_loss(y_test, p)),
        "ece": expected_calibration_error(y_test, p),
        "precision_at_top_10pct": precision_at_top(y_test, p),
        "test_late_rate": float(y_test.mean()),
        "test_mean_predicted": float(p.mean()),
        "baseline_base_rate_brier": float(brier_score_loss(y_test, np.full(len(y_test), base_rate))),
        "baseline_base_rate_pr_auc": float(y_test.mean()),
        "baseline_lane_auc": _auc(y_test, lane),
        "baseline_lane_pr_auc": float(average_precision_score(y_test, np.nan_to_num(lane, nan=base_rate))),
        "test_rows": float(len(y_test)),
        "train_rows": float(len(y_train)),
    }
