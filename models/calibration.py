"""Probability calibration fitted on time-ordered out-of-fold scores.

Isotonic regression on scores the calibrated trees never saw: each training block is scored by trees
fitted only on the blocks before it (an expanding window), so the calibrator learns how raw scores
translate into frequencies on *later* data — the situation it faces in production.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression


class IsotonicCalibrator:
    """Monotone map from raw probability to calibrated probability, applied with ``np.interp``."""

    def __init__(self) -> None:
        self.x_: np.ndarray | None = None
        self.y_: np.ndarray | None = None

    def fit(self, raw: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(np.asarray(raw, dtype=float), np.asarray(y, dtype=float))
        self.x_ = np.asarray(iso.X_thresholds_, dtype=float)
        self.y_ = np.asarray(iso.y_thresholds_, dtype=float)
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        if self.x_ is None or self.y_ is None:
            raise RuntimeError("calibrator is not fitted")
        return np.interp(np.asarray(raw, dtype=float), self.x_, self.y_)


def expanding_blocks(times: np.ndarray, n_blocks: int) -> list[np.ndarray]:
    """Split row indices into ``n_blocks`` consecutive time blocks of roughly equal size."""
    order = np.argsort(times, kind="stable")
    return [np.sort(block) for block in np.array_split(order, n_blocks)]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width bins: the weighted mean |observed rate - mean predicted| per bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))
