"""Calibration of multiclass probabilities: one isotonic map per class, then renormalised.

Fitted, like the delay model's, on time-ordered out-of-fold scores (trees fitted on earlier blocks
score a later block), so it learns how raw scores translate into frequencies on *later* invoices.
Per-class isotonic maps keep the rare classes' shape (temperature scaling, a single parameter, was
measured worse on the expected calibration error of ``P(clean)``, the number auto-approval hangs on).
"""

from __future__ import annotations

import numpy as np

from models.calibration import IsotonicCalibrator, expected_calibration_error

FLOOR = 1e-6
"""Smallest calibrated probability: no class is ever ruled out entirely (keeps log-loss finite)."""


class MulticlassCalibrator:
    """``P(class k) = iso_k(raw_k) / sum_j iso_j(raw_j)``."""

    def __init__(self) -> None:
        self.maps_: list[IsotonicCalibrator] = []

    def fit(self, raw: np.ndarray, y: np.ndarray) -> MulticlassCalibrator:
        """``raw``: (n, k) out-of-fold probabilities; ``y``: (n,) integer class codes."""
        raw, y = np.asarray(raw, dtype=float), np.asarray(y)
        self.maps_ = [IsotonicCalibrator().fit(raw[:, k], (y == k).astype(float)) for k in range(raw.shape[1])]
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        if not self.maps_:
            raise RuntimeError("calibrator is not fitted")
        raw = np.atleast_2d(np.asarray(raw, dtype=float))
        calibrated = np.column_stack([m.transform(raw[:, k]) for k, m in enumerate(self.maps_)])
        calibrated = np.maximum(calibrated, FLOOR)
        return calibrated / calibrated.sum(axis=1, keepdims=True)


def top_label_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the confidence in the predicted class (how often a '90 % sure' verdict is right)."""
    proba = np.asarray(proba, dtype=float)
    predicted = proba.argmax(axis=1)
    return expected_calibration_error((predicted == np.asarray(y)).astype(float), proba.max(axis=1), n_bins)
